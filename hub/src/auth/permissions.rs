//! Role permissions, decided by casbin (RBAC with domains; domains are grid subtrees).
//!
//! - A policy line `p, <role>, <grids>, <object>, <action>` lets a role do `action` on `object`
//!   inside the grid subtree `grids` (`*` = everywhere). Lines live in the `casbin_rule` table
//!   and are edited only through `PUT /v1/admin/roles/{role}`.
//! - An assignment `g, <subject>, <role>, <grids>` gives a user (`user:<id>`) or a client
//!   (`client:<id>`) a role inside a subtree: a grid worker holds `grid_worker` in each of its
//!   grids; admins, DPOs and clients hold their roles everywhere. Assignments are derived from
//!   `user_roles`/`user_grids`/`client_roles` when the enforcer loads.
//! - A request names a domain: the record's grid for grid-bound objects, or `-` for objects
//!   that belong to no grid (then holding the role anywhere is enough).
//!
//! Every change bumps `policy_state.version`; each request compares that version with the one
//! loaded and reloads first when they differ, so a change takes effect on the next request on
//! every replica. Safety (PITFALLS): the enforcer is private to this module and never
//! disabled; any error, a disabled enforcer or a failed reload decides **deny**; nothing a caller
//! sends becomes matcher text (the model is a constant; roles, objects and actions are checked
//! against fixed vocabularies before they are stored).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use casbin::function_map::OperatorFunction;
use casbin::rhai::Dynamic;
use casbin::{Adapter, CoreApi, DefaultModel, Enforcer, Filter, Model};
use policy::GridCode;
use tokio::sync::{Mutex, RwLock};

use crate::storage::{PolicySnapshot, Store};

/// The casbin model. Constant: requests and policies are data, never matcher text.
const MODEL: &str = r#"
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && gridWithin(r.dom, p.dom) && r.obj == p.obj && r.act == p.act
"#;

/// The domain of a request on something that belongs to no grid.
pub const NO_GRID: &str = "-";
/// A policy or assignment domain covering every grid.
pub const EVERY_GRID: &str = "*";

/// Does the request domain `request` fall inside the policy/assignment domain `pattern`?
/// `*` covers everything, `-` (no grid) is covered by any domain, otherwise grid-subtree
/// containment by code segments. Malformed codes match nothing.
fn grid_within(request: &str, pattern: &str) -> bool {
    if pattern == EVERY_GRID || request == NO_GRID {
        return true;
    }
    match (GridCode::parse(pattern), GridCode::parse(request)) {
        (Ok(p), Ok(r)) => p.contains(&r),
        _ => false,
    }
}

fn grid_within_fn(request: Dynamic, pattern: Dynamic) -> Dynamic {
    let request = request.into_immutable_string().unwrap_or_default();
    let pattern = pattern.into_immutable_string().unwrap_or_default();
    grid_within(&request, &pattern).into()
}

/// What a permission is about. The vocabulary is closed: the roles API accepts nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectSpec {
    pub name: &'static str,
    pub actions: &'static [&'static str],
    /// Grid-bound objects are checked in the grid they concern; others with `-`.
    pub grid_bound: bool,
}

pub const OBJECTS: &[ObjectSpec] = &[
    ObjectSpec {
        name: "records",
        actions: &["read", "write", "erase", "publish"],
        grid_bound: true,
    },
    ObjectSpec {
        name: "grids",
        actions: &["read", "write"],
        grid_bound: false,
    },
    ObjectSpec {
        name: "catalog",
        actions: &["read", "write"],
        grid_bound: false,
    },
    ObjectSpec {
        name: "purposes",
        actions: &["read", "write"],
        grid_bound: false,
    },
    ObjectSpec {
        name: "users",
        actions: &["write"],
        grid_bound: false,
    },
    ObjectSpec {
        name: "departments",
        actions: &["read", "write"],
        grid_bound: false,
    },
    ObjectSpec {
        name: "clients",
        actions: &["read", "write"],
        grid_bound: false,
    },
    ObjectSpec {
        name: "roles",
        actions: &["read", "write"],
        grid_bound: false,
    },
    ObjectSpec {
        name: "audit",
        actions: &["read"],
        grid_bound: false,
    },
    // `request`: for the caller's own department; `request_any`: for any department;
    // `approve`: approve or reject; `manage`: suspend, resume, revoke; `read`: every grant (a
    // department always reads its own).
    ObjectSpec {
        name: "grants",
        actions: &["request", "request_any", "approve", "manage", "read"],
        grid_bound: false,
    },
    // In the case's grid. `reply` also needs a current assignment of the caller's department;
    // `read`: any case there (assignees always read theirs).
    ObjectSpec {
        name: "cases",
        actions: &["report", "assign", "reply", "close", "read"],
        grid_bound: true,
    },
    ObjectSpec {
        name: "decisions",
        actions: &["explain"],
        grid_bound: false,
    },
    // Pulling records under grants (`read`) and looking one up by an indexed field (`lookup`).
    ObjectSpec {
        name: "data",
        actions: &["read", "lookup"],
        grid_bound: false,
    },
];

pub fn object_spec(name: &str) -> Option<&'static ObjectSpec> {
    OBJECTS.iter().find(|o| o.name == name)
}

/// A role name: 1–64 of `a-z 0-9 _ -`, starting with a letter.
pub fn valid_role_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// One permission of a role, as stored and as the roles API shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub object: String,
    pub action: String,
    /// `*` or a grid code.
    pub grids: String,
}

/// The shipped roles and their default permissions (seeded into an empty database).
pub fn shipped_roles() -> Vec<(&'static str, &'static str, Vec<Permission>)> {
    let p = |object: &str, action: &str| Permission {
        object: object.to_owned(),
        action: action.to_owned(),
        grids: EVERY_GRID.to_owned(),
    };
    let mut admin = Vec::new();
    for o in OBJECTS {
        for a in o.actions {
            admin.push(p(o.name, a));
        }
    }
    vec![
        (
            "admin",
            "administers grids, catalog, departments, clients, users and roles",
            admin,
        ),
        (
            "dpo",
            "data protection officer: reviews the audit ledger, erases records",
            vec![
                p("grids", "read"),
                p("catalog", "read"),
                p("purposes", "read"),
                p("audit", "read"),
                p("records", "erase"),
                p("departments", "read"),
                p("clients", "read"),
                p("roles", "read"),
                p("grants", "approve"),
                p("grants", "manage"),
                p("grants", "read"),
                p("cases", "read"),
                p("decisions", "explain"),
            ],
        ),
        (
            "grid_worker",
            "collects and corrects records in the grids assigned to it",
            vec![
                p("grids", "read"),
                p("catalog", "read"),
                p("purposes", "read"),
                p("records", "read"),
                p("records", "write"),
                p("cases", "report"),
            ],
        ),
        (
            "grid_center",
            "grid management center: dispatches, reassigns and closes cases",
            vec![
                p("grids", "read"),
                p("catalog", "read"),
                p("purposes", "read"),
                p("departments", "read"),
                p("cases", "report"),
                p("cases", "assign"),
                p("cases", "close"),
                p("cases", "read"),
            ],
        ),
        (
            "department",
            "a department system (default role of every client)",
            vec![
                p("grids", "read"),
                p("catalog", "read"),
                p("purposes", "read"),
                p("grants", "request"),
                p("cases", "reply"),
                p("decisions", "explain"),
                p("data", "read"),
                p("data", "lookup"),
                p("records", "publish"),
            ],
        ),
    ]
}

/// Who is asking, as casbin sees it.
pub fn user_subject(id: &str) -> String {
    format!("user:{id}")
}
pub fn client_subject(id: &str) -> String {
    format!("client:{id}")
}

/// Reads policy lines and assignments from the hub's database, or from a snapshot of them.
/// Read-only on purpose: changes go through the roles and identity APIs (one transaction with
/// the version bump), never through casbin's auto-save.
struct StoreAdapter {
    source: PolicySource,
}

enum PolicySource {
    /// The database's current policy.
    Store(Store),
    /// A policy as a change would commit it (`SnapshotDecider`).
    Snapshot(PolicySnapshot),
}

fn adapter_error(e: impl std::fmt::Display) -> casbin::Error {
    casbin::Error::AdapterError(casbin::error::AdapterError(Box::new(
        std::io::Error::other(e.to_string()),
    )))
}

fn read_only() -> casbin::Error {
    adapter_error("role permissions are changed through the roles API only")
}

#[async_trait]
impl Adapter for StoreAdapter {
    async fn load_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        let snapshot = match &self.source {
            PolicySource::Store(store) => store.policy_snapshot().await.map_err(adapter_error)?,
            PolicySource::Snapshot(snapshot) => snapshot.clone(),
        };
        for line in snapshot.permissions {
            m.add_policy("p", "p", vec![line.0, line.1, line.2, line.3]);
        }
        for (subject, role, domain) in snapshot.assignments {
            m.add_policy("g", "g", vec![subject, role, domain]);
        }
        Ok(())
    }
    async fn load_filtered_policy<'a>(
        &mut self,
        m: &mut dyn Model,
        _f: Filter<'a>,
    ) -> casbin::Result<()> {
        self.load_policy(m).await
    }
    async fn save_policy(&mut self, _m: &mut dyn Model) -> casbin::Result<()> {
        Err(read_only())
    }
    async fn clear_policy(&mut self) -> casbin::Result<()> {
        Err(read_only())
    }
    fn is_filtered(&self) -> bool {
        false
    }
    async fn add_policy(&mut self, _: &str, _: &str, _: Vec<String>) -> casbin::Result<bool> {
        Err(read_only())
    }
    async fn add_policies(
        &mut self,
        _: &str,
        _: &str,
        _: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        Err(read_only())
    }
    async fn remove_policy(&mut self, _: &str, _: &str, _: Vec<String>) -> casbin::Result<bool> {
        Err(read_only())
    }
    async fn remove_policies(
        &mut self,
        _: &str,
        _: &str,
        _: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        Err(read_only())
    }
    async fn remove_filtered_policy(
        &mut self,
        _: &str,
        _: &str,
        _: usize,
        _: Vec<String>,
    ) -> casbin::Result<bool> {
        Err(read_only())
    }
}

struct Loaded {
    version: i64,
    enforcer: Arc<Policy>,
}

/// One loaded policy version: the enforcer and the decisions it made, remembered (a casbin
/// `enforce` scans every line and runs the grid matcher: ~65 µs; a remembered one ~0.3 µs).
/// A new version is a new `Policy`, so nothing remembered outlives the lines it came from.
struct Policy {
    enforcer: Enforcer,
    decided: std::sync::Mutex<HashMap<[String; 4], bool>>,
}

/// Decisions remembered per policy version at most; when full, all are dropped.
const DECIDED_CAPACITY: usize = 16_384;

impl Policy {
    /// May `subject` do `action` on `object` in `domain`? Any error is a refusal, never
    /// remembered.
    fn allows(&self, subject: &str, domain: &str, object: &str, action: &str) -> bool {
        let key = [subject, domain, object, action].map(str::to_owned);
        if let Some(allowed) = self.decided.lock().ok().and_then(|d| d.get(&key).copied()) {
            return allowed;
        }
        if !self.enforcer.is_enabled() {
            tracing::error!("casbin enforcer is disabled: denying");
            return false;
        }
        match self.enforcer.enforce((subject, domain, object, action)) {
            Ok(allowed) => {
                if let Ok(mut decided) = self.decided.lock() {
                    if decided.len() >= DECIDED_CAPACITY {
                        decided.clear();
                    }
                    decided.insert(key, allowed);
                }
                allowed
            }
            Err(e) => {
                tracing::error!(error = %e, "casbin enforce failed: denying");
                false
            }
        }
    }
}

/// The role-permission decision point shared by all handlers.
pub struct Permissions {
    store: Store,
    loaded: RwLock<Option<Loaded>>,
    reloading: Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    #[error("cannot load role permissions: {0}")]
    Load(String),
}

async fn build_enforcer(source: PolicySource) -> Result<Enforcer, PermissionError> {
    let model = DefaultModel::from_str(MODEL)
        .await
        .map_err(|e| PermissionError::Load(e.to_string()))?;
    let adapter = StoreAdapter { source };
    let mut enforcer = Enforcer::new(model, adapter)
        .await
        .map_err(|e| PermissionError::Load(e.to_string()))?;
    enforcer.add_function("gridWithin", OperatorFunction::Arg2(grid_within_fn));
    enforcer
        .get_role_manager()
        .write()
        .matching_fn(None, Some(grid_within));
    enforcer
        .build_role_links()
        .map_err(|e| PermissionError::Load(e.to_string()))?;
    Ok(enforcer)
}

impl Permissions {
    pub async fn load(store: Store) -> Result<Permissions, PermissionError> {
        let permissions = Permissions {
            store,
            loaded: RwLock::new(None),
            reloading: Mutex::new(()),
        };
        permissions.current().await?;
        Ok(permissions)
    }

    /// The enforcer for the database's current policy version, reloading if it changed.
    async fn current(&self) -> Result<Arc<Policy>, PermissionError> {
        let version = self
            .store
            .policy_version()
            .await
            .map_err(|e| PermissionError::Load(e.to_string()))?;
        self.at(version).await
    }

    /// The enforcer for policy `version` (read from the database by the caller), reloading if
    /// the loaded one is older.
    async fn at(&self, version: i64) -> Result<Arc<Policy>, PermissionError> {
        if let Some(l) = self
            .loaded
            .read()
            .await
            .as_ref()
            .filter(|l| l.version == version)
        {
            return Ok(l.enforcer.clone());
        }
        let _one_reload_at_a_time = self.reloading.lock().await;
        if let Some(l) = self
            .loaded
            .read()
            .await
            .as_ref()
            .filter(|l| l.version >= version)
        {
            return Ok(l.enforcer.clone());
        }
        // Read the version before the lines: a change racing this load bumps the version
        // again, and the next request reloads.
        let enforcer = Arc::new(Policy {
            enforcer: build_enforcer(PolicySource::Store(self.store.clone())).await?,
            decided: std::sync::Mutex::new(HashMap::new()),
        });
        *self.loaded.write().await = Some(Loaded {
            version,
            enforcer: enforcer.clone(),
        });
        tracing::debug!(version, "role permissions loaded");
        Ok(enforcer)
    }

    /// May `subject` do `action` on `object` in `domain` (a grid code or `-`)? Any failure is a
    /// refusal.
    pub async fn allows(&self, subject: &str, domain: &str, object: &str, action: &str) -> bool {
        let enforcer = self.current().await;
        Self::enforce(enforcer, subject, domain, object, action)
    }

    /// As `allows`, at the policy `version` the request read (`Store::versions`), which saves
    /// the version query.
    pub async fn allows_at(
        &self,
        version: i64,
        subject: &str,
        domain: &str,
        object: &str,
        action: &str,
    ) -> bool {
        let enforcer = self.at(version).await;
        Self::enforce(enforcer, subject, domain, object, action)
    }

    fn enforce(
        policy: Result<Arc<Policy>, PermissionError>,
        subject: &str,
        domain: &str,
        object: &str,
        action: &str,
    ) -> bool {
        match policy {
            Ok(policy) => policy.allows(subject, domain, object, action),
            Err(e) => {
                tracing::error!(error = %e, "role permissions unavailable: denying");
                false
            }
        }
    }
}

/// Decisions on a given policy (`PolicySnapshot`) instead of the database's current one: the
/// same model, matcher and fail-closed rules as `Permissions`, for checking what a change would
/// leave (`auth::role_administrators`).
pub struct SnapshotDecider {
    policy: Policy,
}

impl SnapshotDecider {
    pub async fn new(snapshot: PolicySnapshot) -> Result<SnapshotDecider, PermissionError> {
        Ok(SnapshotDecider {
            policy: Policy {
                enforcer: build_enforcer(PolicySource::Snapshot(snapshot)).await?,
                decided: std::sync::Mutex::new(HashMap::new()),
            },
        })
    }

    /// As `Permissions::allows`, on this snapshot.
    pub fn allows(&self, subject: &str, domain: &str, object: &str, action: &str) -> bool {
        self.policy.allows(subject, domain, object, action)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn grid_within_is_subtree_containment() {
        assert!(grid_within("330110.003.012", "330110.003"));
        assert!(grid_within("330110.003", "330110.003"));
        assert!(!grid_within("330110.0031", "330110.003"));
        assert!(!grid_within("330110.004", "330110.003"));
        assert!(!grid_within("330110", "330110.003"));
        assert!(grid_within("330110.004", "*"));
        assert!(grid_within("-", "330110.003"));
        assert!(!grid_within("not a grid", "330110"));
    }

    use casbin::{MemoryAdapter, MgmtApi};

    /// No lock-out check: these tests are about reloading, not about who is left.
    struct AdmitsAnything;
    #[async_trait]
    impl crate::storage::PolicyGuard for AdmitsAnything {
        async fn admits(&self, _: &PolicySnapshot) -> bool {
            true
        }
    }

    async fn enforcer_with(lines: &[[&str; 4]], links: &[[&str; 3]]) -> Enforcer {
        let model = DefaultModel::from_str(MODEL).await.unwrap();
        let mut e = Enforcer::new(model, MemoryAdapter::default())
            .await
            .unwrap();
        e.add_function("gridWithin", OperatorFunction::Arg2(grid_within_fn));
        e.get_role_manager()
            .write()
            .matching_fn(None, Some(grid_within));
        for l in lines {
            e.add_policy(l.iter().map(|s| s.to_string()).collect())
                .await
                .unwrap();
        }
        for l in links {
            e.add_grouping_policy(l.iter().map(|s| s.to_string()).collect())
                .await
                .unwrap();
        }
        e.build_role_links().unwrap();
        e
    }

    #[tokio::test]
    async fn roles_held_in_a_subtree_reach_only_that_subtree() {
        let e = enforcer_with(
            &[
                ["grid_worker", "*", "records", "write"],
                ["admin", "*", "grids", "write"],
            ],
            &[
                ["user:w", "grid_worker", "330110.003"],
                ["user:a", "admin", "*"],
            ],
        )
        .await;
        assert!(
            e.enforce(("user:w", "330110.003.012", "records", "write"))
                .unwrap()
        );
        assert!(
            e.enforce(("user:w", "330110.003", "records", "write"))
                .unwrap()
        );
        assert!(
            !e.enforce(("user:w", "330110.004", "records", "write"))
                .unwrap()
        );
        assert!(
            !e.enforce(("user:w", "330110.003", "records", "erase"))
                .unwrap()
        );
        assert!(!e.enforce(("user:w", "-", "grids", "write")).unwrap());
        assert!(e.enforce(("user:a", "-", "grids", "write")).unwrap());
        assert!(
            !e.enforce(("user:a", "330110.003", "records", "write"))
                .unwrap()
        );
        assert!(!e.enforce(("user:nobody", "-", "grids", "write")).unwrap());
    }

    #[tokio::test]
    async fn a_permission_limited_to_a_subtree_stops_at_its_edge() {
        let e = enforcer_with(
            &[["district_admin", "330110.003", "records", "erase"]],
            &[["user:d", "district_admin", "*"]],
        )
        .await;
        assert!(
            e.enforce(("user:d", "330110.003.001", "records", "erase"))
                .unwrap()
        );
        assert!(
            !e.enforce(("user:d", "330110.004.001", "records", "erase"))
                .unwrap()
        );
    }

    /// Two `Permissions` over one database stand for two replicas: a change written through
    /// one store handle is seen by the other on its next decision, with no restart.
    #[tokio::test]
    async fn a_change_reaches_every_replica_on_its_next_decision() {
        let dir = tempfile::tempdir().unwrap();
        let location = crate::config::DatabaseLocation::Sqlite(dir.path().join("p.db"));
        let store_a = Store::open(&location).await.unwrap();
        let store_b = Store::open(&location).await.unwrap();
        let rows: Vec<_> = shipped_roles()
            .into_iter()
            .map(|(n, d, p)| {
                let lines = p
                    .into_iter()
                    .map(|p| (p.object, p.action, p.grids))
                    .collect();
                (n, d, lines)
            })
            .collect();
        store_a.seed_roles(&rows, 0).await.unwrap();
        let user = crate::storage::NewUser {
            id: "u1".to_owned(),
            username: "dpo1".to_owned(),
            password_hash: "x".to_owned(),
            department: None,
            roles: vec!["dpo".to_owned()],
            grids: vec![],
        };
        assert!(store_a.insert_user(&user, 0).await.unwrap());
        let replica_a = Permissions::load(store_a.clone()).await.unwrap();
        let replica_b = Permissions::load(store_b.clone()).await.unwrap();
        for r in [&replica_a, &replica_b] {
            assert!(r.allows("user:u1", NO_GRID, "audit", "read").await);
            assert!(!r.allows("user:u1", NO_GRID, "grids", "write").await);
        }
        let mut dpo = store_a.role("dpo").await.unwrap().unwrap().permissions;
        dpo.push(("grids".to_owned(), "write".to_owned(), "*".to_owned()));
        let anything = AdmitsAnything;
        let apply = crate::storage::Apply::Commit;
        store_a
            .put_role("dpo", "dpo", &dpo, 1, &anything, apply)
            .await
            .unwrap();
        assert!(replica_b.allows("user:u1", NO_GRID, "grids", "write").await);
        assert!(replica_a.allows("user:u1", NO_GRID, "grids", "write").await);
        // Taking the role away from the user also reaches the other replica.
        store_b
            .set_user_roles("u1", &[], &anything, apply)
            .await
            .unwrap();
        assert!(!replica_a.allows("user:u1", NO_GRID, "audit", "read").await);
    }

    #[test]
    fn role_names_and_vocabulary() {
        assert!(valid_role_name("grid_worker"));
        assert!(valid_role_name("district-admin2"));
        assert!(!valid_role_name(""));
        assert!(!valid_role_name("Admin"));
        assert!(!valid_role_name("a\" || true || \""));
        assert!(object_spec("records").is_some_and(|o| o.grid_bound));
        assert!(object_spec("secrets").is_none());
        for (name, _, perms) in shipped_roles() {
            assert!(valid_role_name(name));
            for p in perms {
                let spec = object_spec(&p.object).unwrap();
                assert!(spec.actions.contains(&p.action.as_str()), "{name}: {p:?}");
            }
        }
    }
}
