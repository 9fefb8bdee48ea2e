//! Registered purposes of processing. The shipped ones are inserted on every start if missing.

use sqlx::Row;

use super::{Store, StoreError, WriteTx, on_read, on_write};
use crate::time::now_ms;

#[derive(Debug, Clone)]
pub struct PurposeRow {
    pub id: String,
    pub description: String,
    pub legal_basis: String,
}

/// The purposes every hub ships with (API.md).
pub const SHIPPED_PURPOSES: [(&str, &str, &str); 6] = [
    (
        "population-registration",
        "Registering and maintaining resident and household information",
        "PIPL art. 13(1)(3): performing statutory duties; Resident Identity Card Law",
    ),
    (
        "elderly-care",
        "Identifying and supporting elderly residents, especially those living alone",
        "PIPL art. 13(1)(3); Law on the Protection of the Rights and Interests of the Elderly",
    ),
    (
        "epidemic-prevention",
        "Contact tracing and health services during public-health emergencies",
        "PIPL art. 13(1)(4): responding to public-health emergencies; Law on Prevention and Control of Infectious Diseases",
    ),
    (
        "rental-registration",
        "Registering rental housing and floating residents",
        "PIPL art. 13(1)(3); Residence Permit Regulations",
    ),
    (
        "case-investigation",
        "Investigating a case assigned to the requesting department",
        "PIPL art. 13(1)(3); Criminal Procedure Law / Public Security Administration Punishments Law",
    ),
    (
        "court-execution",
        "Locating persons and assets subject to a court's enforcement order",
        "PIPL art. 13(1)(3); Civil Procedure Law, enforcement chapter",
    ),
];

impl Store {
    pub(super) async fn seed_purposes(&self) -> Result<(), StoreError> {
        let now = now_ms();
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            for (id, description, legal_basis) in SHIPPED_PURPOSES {
                sqlx::query(
                    "INSERT INTO purposes (id, description, legal_basis, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(description)
                .bind(legal_basis)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// `Ok(false)` when a purpose with that id exists already.
    pub async fn insert_purpose(&self, p: &PurposeRow) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let done = sqlx::query(
                "INSERT INTO purposes (id, description, legal_basis, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            )
            .bind(p.id.clone())
            .bind(p.description.clone())
            .bind(p.legal_basis.clone())
            .bind(now_ms())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    pub async fn purposes(&self) -> Result<Vec<PurposeRow>, sqlx::Error> {
        on_read!(self, |pool| {
            let rows = sqlx::query("SELECT id, description, legal_basis FROM purposes ORDER BY id")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(PurposeRow {
                        id: r.try_get("id")?,
                        description: r.try_get("description")?,
                        legal_basis: r.try_get("legal_basis")?,
                    })
                })
                .collect()
        })
    }

    pub async fn purpose_exists(&self, id: &str) -> Result<bool, sqlx::Error> {
        on_read!(self, |pool| {
            let row = sqlx::query("SELECT 1 AS one FROM purposes WHERE id = $1")
                .bind(id.to_owned())
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }
}
