//! Grid rows. Codes are validated `GridCode`s before they reach this module.

use policy::GridCode;
use sqlx::Row;

use super::{Store, WriteTx, on_read, on_write};

#[derive(Debug, Clone)]
pub struct GridRow {
    pub code: String,
    pub name: String,
    pub kind: String,
}

impl Store {
    /// Insert grids in one transaction; `Ok(false)` if any code already exists (nothing written).
    pub async fn insert_grids(&self, grids: &[GridRow], now: i64) -> Result<bool, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            for g in grids {
                let done = sqlx::query(
                    "INSERT INTO grids (code, name, kind, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (code) DO NOTHING",
                )
                .bind(g.code.clone())
                .bind(g.name.clone())
                .bind(g.kind.clone())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn grids(&self) -> Result<Vec<GridRow>, sqlx::Error> {
        on_read!(self, |pool| {
            let rows = sqlx::query("SELECT code, name, kind FROM grids ORDER BY code")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(GridRow {
                        code: r.try_get("code")?,
                        name: r.try_get("name")?,
                        kind: r.try_get("kind")?,
                    })
                })
                .collect()
        })
    }

    pub async fn grid_exists(&self, code: &GridCode) -> Result<bool, sqlx::Error> {
        on_read!(self, |pool| {
            let row = sqlx::query("SELECT 1 AS one FROM grids WHERE code = $1")
                .bind(code.as_str().to_owned())
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }
}
