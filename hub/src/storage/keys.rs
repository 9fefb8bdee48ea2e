//! KEK versions as the database keeps them (issue 22, migration 0024): each version's state
//! (`active`, `rewrap`, `retired`), its wrap count (AES-GCM's random-nonce budget), and the
//! rewrap's progress. The keyring file holds the keys' bytes; these rows say which version does
//! what, so every hub process sharing the database follows one rotation.
//!
//! The fence: every write that stores a data key adds to its version's row (`charge_kek!`) in
//! the same transaction, and only while that version is not retired; `retire_kek` takes the same
//! row first and then counts what is left under the version, so once a version is retired no
//! data key is ever stored under it.

use sqlx::Row;

use super::{Store, WriteTx, on_read, on_write};

/// The states of a KEK version (the `state` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KekState {
    /// Wraps the data keys of new writes; one per key category.
    Active,
    /// Superseded: unwraps while the rewrap moves its data keys to the active version.
    Rewrap,
    /// Wraps and unwraps nothing.
    Retired,
}

impl KekState {
    pub fn as_str(self) -> &'static str {
        match self {
            KekState::Active => "active",
            KekState::Rewrap => "rewrap",
            KekState::Retired => "retired",
        }
    }

    fn parse(s: &str) -> Result<KekState, sqlx::Error> {
        match s {
            "active" => Ok(KekState::Active),
            "rewrap" => Ok(KekState::Rewrap),
            "retired" => Ok(KekState::Retired),
            _ => Err(sqlx::Error::Decode("unknown KEK state".into())),
        }
    }
}

/// One KEK version's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRow {
    pub category: String,
    pub version: u32,
    pub state: KekState,
    pub state_since_ms: i64,
    /// Data keys wrapped under this version so far (new ones and rewrapped ones).
    pub wraps: i64,
    /// Data keys moved off this version by the rewrap.
    pub rewrapped: i64,
    pub cursor: Option<String>,
}

/// Where data keys of a key category are stored: a catalog category's in `records`; the case
/// texts' scope in `cases` and `webhook_endpoints` (webhook secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DekTable {
    Records,
    Cases,
    WebhookEndpoints,
}

impl DekTable {
    /// The tables holding the data keys of key category `category`, in rewrap order.
    pub fn of(category: &str) -> &'static [DekTable] {
        if category == crate::vault::CASE_TEXTS {
            &[DekTable::Cases, DekTable::WebhookEndpoints]
        } else {
            &[DekTable::Records]
        }
    }

    fn name(self) -> &'static str {
        match self {
            DekTable::Records => "records",
            DekTable::Cases => "cases",
            DekTable::WebhookEndpoints => "webhook_endpoints",
        }
    }

    fn parse(name: &str) -> Option<DekTable> {
        [
            DekTable::Records,
            DekTable::Cases,
            DekTable::WebhookEndpoints,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }

    /// (key column, extra filter) of the table's rows of `$1` = category.
    fn select(self) -> &'static str {
        match self {
            DekTable::Records => {
                "SELECT id AS k, wrapped_dek FROM records WHERE category = $1 AND kek_version = $2 \
                 AND id > $3 AND wrapped_dek IS NOT NULL ORDER BY id LIMIT $4"
            }
            DekTable::Cases => {
                "SELECT id AS k, wrapped_dek FROM cases WHERE $1 <> '' AND kek_version = $2 \
                 AND id > $3 ORDER BY id LIMIT $4"
            }
            DekTable::WebhookEndpoints => {
                "SELECT destination AS k, wrapped_dek FROM webhook_endpoints WHERE $1 <> '' \
                 AND kek_version = $2 AND destination > $3 ORDER BY destination LIMIT $4"
            }
        }
    }

    /// Compare-and-swap of one data key: only if it is still the one read.
    fn update(self) -> &'static str {
        match self {
            DekTable::Records => {
                "UPDATE records SET kek_version = $1, wrapped_dek = $2 \
                 WHERE id = $3 AND kek_version = $4 AND wrapped_dek = $5"
            }
            DekTable::Cases => {
                "UPDATE cases SET kek_version = $1, wrapped_dek = $2 \
                 WHERE id = $3 AND kek_version = $4 AND wrapped_dek = $5"
            }
            DekTable::WebhookEndpoints => {
                "UPDATE webhook_endpoints SET kek_version = $1, wrapped_dek = $2 \
                 WHERE destination = $3 AND kek_version = $4 AND wrapped_dek = $5"
            }
        }
    }

    fn count(self) -> &'static str {
        match self {
            DekTable::Records => {
                "SELECT COUNT(*) FROM records WHERE category = $1 AND kek_version = $2 \
                 AND wrapped_dek IS NOT NULL"
            }
            DekTable::Cases => "SELECT COUNT(*) FROM cases WHERE $1 <> '' AND kek_version = $2",
            DekTable::WebhookEndpoints => {
                "SELECT COUNT(*) FROM webhook_endpoints WHERE $1 <> '' AND kek_version = $2"
            }
        }
    }
}

/// Where a rewrap stopped: the table and the last key it moved there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapCursor {
    pub table: DekTable,
    pub after: String,
}

impl RewrapCursor {
    pub fn parse(text: &str) -> Option<RewrapCursor> {
        let (table, after) = text.split_once(':')?;
        Some(RewrapCursor {
            table: DekTable::parse(table)?,
            after: after.to_owned(),
        })
    }

    fn encode(&self) -> String {
        format!("{}:{}", self.table.name(), self.after)
    }
}

/// One stored data key still under an old version.
#[derive(Debug, Clone)]
pub struct StoredDek {
    /// The row's key: a record id, a case id, a webhook destination.
    pub key: String,
    pub wrapped: Vec<u8>,
}

/// A data key moved to a new version (compare-and-swap on the old bytes).
#[derive(Debug, Clone)]
pub struct MovedDek {
    pub key: String,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// Add `$n` wraps to KEK version (`$category`, `$version`) inside a write transaction; refuses
/// (an error, so the transaction rolls back) once the version is retired, or past
/// `KEK_WRAP_LIMIT` wraps (AES-GCM's random-nonce bound). See the module docs.
macro_rules! charge_kek {
    ($exec:expr, $category:expr, $version:expr, $n:expr) => {{
        let charged = ::sqlx::query(
            "INSERT INTO kek_usage (category, kek_version, wraps) VALUES ($1, $2, $3) \
             ON CONFLICT (category, kek_version) DO UPDATE SET wraps = kek_usage.wraps + $3 \
             WHERE kek_usage.state <> 'retired' AND kek_usage.wraps + $3 <= $4",
        )
        .bind($category.to_owned())
        .bind(i64::from($version))
        .bind($n)
        .bind($crate::vault::KEK_WRAP_LIMIT)
        .execute($exec)
        .await?
        .rows_affected();
        if charged != 1 {
            return Err(::sqlx::Error::Protocol(format!(
                "KEK version {} of `{}` is retired or past its wrap limit (a hub process had \
                 not yet learnt of its rotation): nothing was written",
                $version, $category
            )));
        }
    }};
}
pub(crate) use charge_kek;

/// A `kek_usage` row of either backend.
macro_rules! kek_row {
    ($r:expr) => {{
        let r = $r;
        let version: i64 = r.try_get("kek_version")?;
        let state: String = r.try_get("state")?;
        Ok::<KekRow, sqlx::Error>(KekRow {
            category: r.try_get("category")?,
            version: u32::try_from(version)
                .map_err(|_| sqlx::Error::Decode("a KEK version is out of range".into()))?,
            state: KekState::parse(&state)?,
            state_since_ms: r.try_get("state_since_ms")?,
            wraps: r.try_get("wraps")?,
            rewrapped: r.try_get("rewrapped")?,
            cursor: r.try_get("rewrap_cursor")?,
        })
    }};
}

impl Store {
    /// Every KEK version's row, by category and version.
    pub async fn kek_rows(&self) -> Result<Vec<KekRow>, sqlx::Error> {
        on_read!(self, |pool| {
            let rows = sqlx::query(
                "SELECT category, kek_version, state, state_since_ms, wraps, rewrapped, \
                 rewrap_cursor FROM kek_usage ORDER BY category, kek_version",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| kek_row!(r)).collect()
        })
    }

    /// Give the versions of the keyring that have no row one: `active` for `active`, `rewrap`
    /// for the others (a version the database has never seen wraps nothing yet; the rewrap
    /// finds it empty and retires it). Existing rows are left as they are.
    pub async fn ensure_kek_rows(
        &self,
        category: &str,
        versions: &[u32],
        active: u32,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let has_active: Option<i64> = sqlx::query_scalar(
                "SELECT kek_version FROM kek_usage WHERE category = $1 AND state = 'active'",
            )
            .bind(category.to_owned())
            .fetch_optional(&mut *tx)
            .await?;
            for &version in versions {
                let state = if has_active.is_none() && version == active {
                    KekState::Active
                } else {
                    KekState::Rewrap
                };
                sqlx::query(
                    "INSERT INTO kek_usage (category, kek_version, wraps, state, state_since_ms) \
                     VALUES ($1, $2, 0, $3, $4) ON CONFLICT (category, kek_version) DO NOTHING",
                )
                .bind(category.to_owned())
                .bind(i64::from(version))
                .bind(state.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })
    }

    /// Make `version` the active KEK version of `category`, and the version that was active a
    /// `rewrap` one, in one transaction. Taking the old active row waits for the writes that
    /// are charging it to commit. Returns the version superseded, if any.
    pub async fn activate_kek(
        &self,
        category: &str,
        version: u32,
        now: i64,
    ) -> Result<Option<u32>, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let previous: Option<i64> = sqlx::query_scalar(
                "UPDATE kek_usage SET state = 'rewrap', state_since_ms = $2, rewrap_cursor = NULL \
                 WHERE category = $1 AND state = 'active' RETURNING kek_version",
            )
            .bind(category.to_owned())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO kek_usage (category, kek_version, wraps, state, state_since_ms) \
                 VALUES ($1, $2, 0, 'active', $3) ON CONFLICT (category, kek_version) \
                 DO UPDATE SET state = 'active', state_since_ms = $3",
            )
            .bind(category.to_owned())
            .bind(i64::from(version))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            previous
                .map(|v| {
                    u32::try_from(v)
                        .map_err(|_| sqlx::Error::Decode("a KEK version is out of range".into()))
                })
                .transpose()
        })
    }

    /// Up to `limit` data keys of `category` still under `version`, from `cursor` on (in
    /// table order, then key order); none when every table is done.
    pub async fn deks_under(
        &self,
        category: &str,
        version: u32,
        cursor: Option<&RewrapCursor>,
        limit: usize,
    ) -> Result<(DekTable, Vec<StoredDek>), sqlx::Error> {
        let tables = DekTable::of(category);
        let start = cursor
            .and_then(|c| tables.iter().position(|t| *t == c.table))
            .unwrap_or(0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        for (i, table) in tables.iter().enumerate().skip(start) {
            let after = match cursor {
                Some(c) if i == start && c.table == *table => c.after.clone(),
                _ => String::new(),
            };
            let found: Vec<StoredDek> = on_read!(self, |pool| {
                let rows = sqlx::query(table.select())
                    .bind(category.to_owned())
                    .bind(i64::from(version))
                    .bind(after.clone())
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(StoredDek {
                            key: r.try_get("k")?,
                            wrapped: r.try_get("wrapped_dek")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })?;
            if !found.is_empty() {
                return Ok((*table, found));
            }
        }
        Ok((
            tables.last().copied().unwrap_or(DekTable::Records),
            Vec::new(),
        ))
    }

    /// Store a batch of rewrapped data keys of `category` from version `from` to `to`, in one
    /// transaction: each only if it is still the one read (a record replaced meanwhile keeps
    /// its new key); `to` is charged for the keys moved, `from` credited, and the cursor moved
    /// past the batch. Returns how many moved.
    pub async fn store_rewrapped(
        &self,
        category: &str,
        from: u32,
        to: u32,
        table: DekTable,
        moved: &[MovedDek],
    ) -> Result<u64, sqlx::Error> {
        let Some(last) = moved.last() else {
            return Ok(0);
        };
        let cursor = RewrapCursor {
            table,
            after: last.key.clone(),
        }
        .encode();
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let mut done: u64 = 0;
            for m in moved {
                done += sqlx::query(table.update())
                    .bind(i64::from(to))
                    .bind(m.new.clone())
                    .bind(m.key.clone())
                    .bind(i64::from(from))
                    .bind(m.old.clone())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            let n = i64::try_from(done).unwrap_or(i64::MAX);
            if n > 0 {
                charge_kek!(&mut *tx, category, to, n);
            }
            sqlx::query(
                "UPDATE kek_usage SET rewrapped = rewrapped + $3, rewrap_cursor = $4 \
                 WHERE category = $1 AND kek_version = $2",
            )
            .bind(category.to_owned())
            .bind(i64::from(from))
            .bind(n)
            .bind(cursor.clone())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(done)
        })
    }

    /// Start the rewrap of (`category`, `version`) from the beginning again (data keys were
    /// stored under it behind the cursor: a write that had not yet learnt of the rotation).
    pub async fn reset_rewrap_cursor(
        &self,
        category: &str,
        version: u32,
    ) -> Result<(), sqlx::Error> {
        on_write!(self, |pool| {
            sqlx::query(
                "UPDATE kek_usage SET rewrap_cursor = NULL WHERE category = $1 AND kek_version = $2",
            )
            .bind(category.to_owned())
            .bind(i64::from(version))
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Retire (`category`, `version`) if no data key is stored under it: the row is taken
    /// first (waiting for writes charging it), then what is left is counted in the same
    /// transaction. Returns the data keys left (0: retired).
    pub async fn retire_kek(
        &self,
        category: &str,
        version: u32,
        now: i64,
    ) -> Result<i64, sqlx::Error> {
        on_write!(self, |pool| {
            let mut tx = WriteTx::begin(pool).await?;
            let taken = sqlx::query(
                "UPDATE kek_usage SET state = 'retired', state_since_ms = $3 \
                 WHERE category = $1 AND kek_version = $2 AND state = 'rewrap'",
            )
            .bind(category.to_owned())
            .bind(i64::from(version))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if taken != 1 {
                tx.rollback().await?;
                return Err(sqlx::Error::Protocol(format!(
                    "KEK version {version} of `{category}` is not being rewrapped"
                )));
            }
            let mut left = 0_i64;
            for table in DekTable::of(category) {
                let n: i64 = sqlx::query_scalar(table.count())
                    .bind(category.to_owned())
                    .bind(i64::from(version))
                    .fetch_one(&mut *tx)
                    .await?;
                left += n;
            }
            if left > 0 {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
            Ok(left)
        })
    }

    /// Data keys of `category` stored under `version` now.
    pub async fn deks_left(&self, category: &str, version: u32) -> Result<i64, sqlx::Error> {
        let mut left = 0_i64;
        for table in DekTable::of(category) {
            let n: i64 = on_read!(self, |pool| {
                sqlx::query_scalar(table.count())
                    .bind(category.to_owned())
                    .bind(i64::from(version))
                    .fetch_one(pool)
                    .await
            })?;
            left += n;
        }
        Ok(left)
    }
}
