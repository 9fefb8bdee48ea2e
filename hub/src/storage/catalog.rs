//! Categories changed or added through `PUT /v1/catalog/{category}` (`catalog_categories`).
//! A change bumps the decision version in its own transaction, so every replica reloads its
//! catalog with its decision index on its next request.

use policy::CategoryDef;
use sqlx::Row;

use super::grants::BUMP_DECISION_VERSION;
use super::{Store, Transitioned, WriteTx, on_read, on_write};

/// A stored category and its change counter.
#[derive(Debug, Clone)]
pub struct StoredCategory {
    pub definition: CategoryDef,
    /// 1 at creation, +1 per change.
    pub version: i64,
}

fn decode_error() -> sqlx::Error {
    sqlx::Error::Decode("stored category has a bad definition".into())
}

impl Store {
    /// Every stored category, by name.
    pub async fn stored_categories(&self) -> Result<Vec<StoredCategory>, sqlx::Error> {
        on_read!(self, |pool| {
            sqlx::query("SELECT definition, version FROM catalog_categories ORDER BY name")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    let text: String = r.try_get("definition")?;
                    Ok(StoredCategory {
                        definition: serde_json::from_str(&text).map_err(|_| decode_error())?,
                        version: r.try_get("version")?,
                    })
                })
                .collect()
        })
    }

    /// Store `definition` as version `expected + 1` of its category (`expected`: the stored
    /// version it replaces, `None` when none is stored), bumping the decision version in the
    /// same transaction; `Stale` when another change came first.
    pub async fn put_category(
        &self,
        definition: &CategoryDef,
        expected: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<Transitioned, sqlx::Error> {
        let text = serde_json::to_string(definition).map_err(|_| decode_error())?;
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let done = match expected {
                None => {
                    sqlx::query(
                        "INSERT INTO catalog_categories \
                         (name, owner, definition, version, updated_at, updated_by) \
                         VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(definition.name.clone())
                    .bind(definition.owner.clone())
                    .bind(text.clone())
                    .bind(now)
                    .bind(actor.to_owned())
                    .execute(&mut *tx)
                    .await?
                }
                Some(version) => {
                    sqlx::query(
                        "UPDATE catalog_categories SET owner = $2, definition = $3, \
                         version = version + 1, updated_at = $4, updated_by = $5 \
                         WHERE name = $1 AND version = $6",
                    )
                    .bind(definition.name.clone())
                    .bind(definition.owner.clone())
                    .bind(text.clone())
                    .bind(now)
                    .bind(actor.to_owned())
                    .bind(version)
                    .execute(&mut *tx)
                    .await?
                }
            };
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Transitioned::Stale);
            }
            let version: i64 = sqlx::query(BUMP_DECISION_VERSION)
                .fetch_one(&mut *tx)
                .await?
                .try_get("version")?;
            tx.commit().await?;
            Ok(Transitioned::Done { version })
        })
    }
}
