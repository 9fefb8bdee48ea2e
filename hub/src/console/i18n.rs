//! The console's two languages: Simplified Chinese (the default: its users are Chinese
//! officials) and English. Every piece of console text is a `Text` variant with both
//! translations in one `match`, so a text cannot miss a language and a typo does not compile.
//! The language is the `gridhub_lang` cookie (`/console/lang?to=en`), else Chinese.

use axum::http::HeaderMap;

pub const LANG_COOKIE: &str = "gridhub_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn of(headers: &HeaderMap) -> Lang {
        match super::session::cookie(headers, LANG_COOKIE).as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The `lang` attribute of the page.
    pub fn html_lang(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language (the switch in the header).
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    pub fn t(self, text: Text) -> &'static str {
        let (zh, en) = text.both();
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

macro_rules! texts {
    ($($name:ident => $zh:literal, $en:literal;)*) => {
        /// A piece of console text.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Text { $($name),* }

        impl Text {
            /// Every text (tests check each has both languages).
            pub const ALL: &'static [Text] = &[$(Text::$name),*];

            /// (Chinese, English).
            pub fn both(self) -> (&'static str, &'static str) {
                match self { $(Text::$name => ($zh, $en)),* }
            }
        }
    };
}

texts! {
    AppName => "Gridhub 数据交换枢纽", "Gridhub data exchange hub";
    Console => "管理控制台", "Console";
    LanguageName => "中文", "English";
    SwitchLanguage => "English", "中文";
    SkipToContent => "跳到正文", "Skip to content";
    MainNavigation => "主导航", "Main navigation";
    LogIn => "登录", "Log in";
    LogOut => "退出登录", "Log out";
    Username => "用户名", "Username";
    Password => "密码", "Password";
    LoginFailed => "用户名或密码错误。", "Wrong username or password.";
    LoginThrottled => "失败次数过多，请稍后再试。", "Too many failed attempts; try again later.";
    SessionExpired => "会话已过期，请重新登录。", "Your session has expired; log in again.";
    SignedInAs => "当前用户", "Signed in as";
    Roles => "角色", "Roles";
    Home => "首页", "Home";
    Overview => "概览", "Overview";
    Audit => "审计日志", "Audit ledger";
    Grants => "授权审批", "Grant queue";
    RolePermissions => "角色权限", "Role permissions";
    LedgerSize => "日志条目数", "Ledger entries";
    PendingGrants => "待审批授权", "Requested grants";
    OverdueGrants => "逾期未答复", "Overdue";
    Forbidden => "无权访问", "Forbidden";
    ForbiddenExplained => "您的角色无权打开此页面。此次访问已记入审计日志。", "Your roles do not permit this page. The attempt has been recorded in the audit ledger.";
    NotFound => "未找到", "Not found";
    ErrorTitle => "出错了", "Something went wrong";
    ErrorCode => "错误代码", "Error code";
    RequestId => "请求编号", "Request id";
    BackHome => "返回首页", "Back to the overview";
    CsrfRefused => "表单已失效或来自其他站点，操作未执行。请刷新页面后重试。", "The form was stale or came from another site; nothing was done. Reload the page and try again.";
    // Audit explorer.
    Filters => "筛选条件", "Filters";
    Apply => "筛选", "Apply";
    Reset => "清除", "Reset";
    Since => "起始时间", "From";
    Until => "截止时间", "Until";
    Department => "部门", "Department";
    Actor => "用户或客户端", "User or client";
    Action => "操作", "Action";
    Decision => "决定", "Decision";
    Allow => "允许", "allow";
    Deny => "拒绝", "deny";
    Any => "全部", "any";
    Category => "数据类别", "Category";
    Field => "字段", "Field";
    Purpose => "用途", "Purpose";
    Grant => "授权", "Grant";
    Case => "案件", "Case";
    Stream => "类别流", "Stream";
    StreamDisclosure => "数据披露与决定", "Disclosures and decisions";
    StreamRecords => "网格记录写入", "Grid record writes";
    StreamAdmin => "管理与策略变更", "Admin and policy changes";
    StreamLogin => "登录", "Logins";
    StreamSystem => "系统", "System";
    Index => "序号", "Index";
    Time => "时间", "Time";
    Records => "记录数", "Records";
    NoEntries => "没有符合条件的条目。", "No entries match.";
    Newer => "较新", "Newer";
    Older => "更早", "Older";
    Newest => "最新", "Newest";
    Pages => "翻页", "Pages";
    ScanLimited => "本页在扫描上限处截止，可继续翻页查看更早的条目。", "This page stopped at the scan limit; page on for older entries.";
    ExportCsv => "导出 CSV", "Export CSV";
    ExportJsonl => "导出 JSONL", "Export JSONL";
    EvidenceBundle => "证据包", "Evidence bundle";
    Entry => "审计条目", "Audit entry";
    WhatWasDecided => "决定内容与依据", "What was decided and why";
    Reason => "原因", "Reason";
    NoGrantDenied => "无授权 → 拒绝", "no grant → denied";
    FieldsDisclosed => "披露的字段与级别", "Fields and levels disclosed";
    Record => "记录", "Record";
    Level => "级别", "Level";
    CanonicalText => "规范文本（已写入日志的原文）", "Canonical text (exactly what was logged)";
    InclusionProof => "包含证明", "Inclusion proof";
    VerifyInBrowser => "在浏览器中验证", "Verify in this browser";
    Verifying => "正在验证……", "Verifying…";
    ProofVerified => "已验证：该条目包含在已签名的检查点中。", "Verified: the entry is included in the signed checkpoint.";
    ProofFailed => "验证失败：证明与已签名的检查点不符。", "Verification FAILED: the proof does not match the signed checkpoint.";
    ProofExplained => "浏览器使用 WebCrypto（SHA-256 与 Ed25519）自行计算叶哈希、沿证明路径求根，并核对检查点签名，不依赖服务器的结论。", "Your browser computes the leaf hash, walks the proof to the root and checks the checkpoint's signature itself (WebCrypto SHA-256 and Ed25519); it does not take the server's word.";
    LedgerKey => "日志签名公钥", "Ledger signing key";
    KeyChanged => "验证失败：日志签名公钥与本浏览器此前记住的不同。", "Verification FAILED: the ledger key differs from the one this browser pinned before.";
    // Subject access report.
    SubjectReport => "个人信息查阅报告", "Subject access report";
    Print => "打印", "Print";
    Show => "查询", "Show";
    ReceivingDepartments => "接收过数据的部门（次数）", "Departments that received data (times)";
    HeldBack => "涉密案件尚未结案，相关披露暂不列出", "Disclosures under confidential open cases, held back until they close";
    RelatedRecord => "同一人在其他类别中的记录", "Same person, other category:";
    // Who can see this.
    WhoCanSee => "谁能看到", "Who can see this";
    NobodySees => "目前没有部门能看到。", "No department can see it now.";
    CountsOnly => "仅能获得统计数字的部门（看不到个人）", "Departments that get counts only (never people)";
    // Grant queue.
    Requested => "待审批", "Requested";
    Grantee => "申请部门", "Grantee";
    RequestedBy => "申请人", "Requested by";
    AnswerDue => "答复期限", "Answer due";
    Overdue => "已逾期", "overdue";
    DueIn => "剩余", "due in";
    Days => "天", "days";
    Hours => "小时", "hours";
    Scope => "范围", "Scope";
    RowFilter => "行过滤条件", "Row filter";
    LegalBasis => "法律依据", "Legal basis";
    CaseBound => "限于已分派案件", "Case-bound";
    ValidFrom => "生效", "Valid from";
    ValidUntil => "失效", "Valid until";
    DailyQuota => "每日限额", "Daily quota";
    Kind => "类型", "Kind";
    OwnerConsent => "数据所有方同意", "Owner's consent";
    History => "审批记录", "History";
    Artefact => "签名授权凭证", "Signed artefact";
    EntriesNamingGrant => "查看依据此授权的全部审计条目", "Every ledger entry that names this grant";
    Approve => "批准", "Approve";
    Reject => "驳回", "Reject";
    RejectReason => "驳回理由（必填）", "Reason for rejecting (required)";
    Approved => "已批准。", "Approved.";
    Rejected => "已驳回。", "Rejected.";
    Status => "状态", "Status";
    NoRequestedGrants => "没有待审批的授权申请。", "No grants are waiting for an answer.";
    OwnRequest => "这是您自己提交的申请，不能由您审批。", "You requested this grant; you cannot answer it.";
    Yes => "是", "yes";
    No => "否", "no";
    // Role matrix.
    Role => "角色", "Role";
    Object => "对象", "Object";
    Save => "保存", "Save";
    Saved => "已保存，下一次请求即生效。", "Saved; in force from the next request.";
    MatrixExplained => "勾选即授予该角色对该对象执行该操作的权限（所有网格）。保存后从下一次请求起生效，并记入审计日志。", "A tick grants the role that action on that object (in every grid). A save takes effect on the next request and is recorded in the audit ledger.";
    GridLimited => "仅限部分网格", "limited to some grids";
    // Lineage: the case assignment behind a case-bound entry.
    ResponsibilityThen => "当时的案件指派（权随责走）", "Responsibility at that moment (the case assignment)";
    AssignmentRound => "指派轮次", "Assignment round";
    AssignedAt => "指派时间（北京时间）", "Assigned at (Beijing time)";
    Deadline => "办理期限", "Deadline";
    RepliedAt => "答复时间", "Replied at";
    AssignmentNow => "现在", "Now";
    StillAssigned => "仍由该部门负责", "still assigned to this department";
    NoLongerAssigned => "已改派或案件已结", "reassigned since, or the case is closed";
    NotAssignedThen => "当时该案件未指派给该部门。", "The case was not assigned to this department at that moment.";
    ResponsibilityUnavailable => "无法读取该案件的指派记录", "The case's assignments cannot be read";
    NavOversight => "监督", "Oversight";
    NavAdministration => "管理", "Administration";
    // Oversight: anomalies and charts.
    AnomTitle => "异常情况", "Anomalies";
    AnomWindow => "时间范围（北京时间）", "Window (Beijing time)";
    AnomExplained => "异常由审计日志计算得出：一小时内拉取 1000 条以上记录、非工作时间（北京时间 7:00–20:00 以外）的披露、一小时内 5 次以上被拒、未关联案件的查询。确认和解决均记入审计日志。", "Anomalies are computed from the audit ledger: 1 000 or more records pulled within an hour, disclosures outside 07:00–20:00 Beijing time, 5 or more denials within an hour, lookups without a case. Acknowledging and resolving are recorded in the audit ledger.";
    AnomKindBulkPull => "批量拉取", "Bulk pull";
    AnomKindOffHours => "非工作时间披露", "Off-hours disclosures";
    AnomKindRepeatedDenials => "多次被拒", "Repeated denials";
    AnomKindLookupWithoutCase => "无案件查询", "Lookups without a case";
    AnomCount => "数量（记录或条目）", "Count (records or entries)";
    AnomFirst => "首次（北京时间）", "First (Beijing time)";
    AnomLast => "最近（北京时间）", "Last (Beijing time)";
    AnomEntries => "相关审计条目", "Ledger entries behind it";
    AnomReview => "处理状态", "Review";
    AnomOpen => "待处理", "open";
    AnomAcknowledged => "已确认", "acknowledged";
    AnomResolved => "已解决", "resolved";
    AnomAcknowledge => "确认", "Acknowledge";
    AnomResolve => "解决", "Resolve";
    AnomNote => "处理说明", "Note";
    AnomResolveNote => "处理说明（解决时必填）", "Note (required to resolve)";
    AnomBy => "处理人", "By";
    AnomAt => "处理时间（北京时间）", "When (Beijing time)";
    AnomAcknowledgedNotice => "已确认该异常，并已记入审计日志。", "Anomaly acknowledged; recorded in the audit ledger.";
    AnomResolvedNotice => "已解决该异常，并已记入审计日志。", "Anomaly resolved; recorded in the audit ledger.";
    AnomNoteRequired => "解决异常必须填写处理说明（不超过 500 字的一行文字）。未作任何更改。", "Resolving an anomaly needs a note (one line, at most 500 characters). Nothing was changed.";
    AnomNone => "此时间范围内没有异常。", "No anomalies in this window.";
    AnomTruncated => "扫描在上限处截止，时间范围内可能还有未检查的条目。", "The scan stopped at its limit; some entries of the window were not examined.";
    AnomScanned => "已检查条目", "Entries examined";
    ChartTitle => "活动图表", "Activity charts";
    ChartExplained => "最近 14 个北京时间自然日的数据披露与拒绝次数，以及当前各部门的案件情况。每张图下方附有同样数字的表格。", "Disclosures and denials over the last 14 days (Beijing time), and each department's cases now. Each chart has a table of the same figures below it.";
    ChartDisclosures => "各部门每日数据披露次数", "Disclosures per department per day";
    ChartDenials => "每日拒绝次数", "Denials per day";
    ChartTopConsumers => "获取记录最多的客户端（最近 14 天）", "Top consumers by records disclosed (last 14 days)";
    ChartCases => "各部门未结与逾期案件", "Open and overdue cases per department";
    ChartDay => "日期", "Day";
    ChartTotal => "合计", "Total";
    ChartClient => "客户端", "Client";
    ChartDisclosureCount => "披露次数", "Disclosures";
    ChartOpen => "未结案件", "Open";
    ChartOverdue => "逾期案件", "Overdue";
    ChartNoData => "此期间没有数据。", "No data in this period.";
    ChartFigures => "图表数据（表格）", "The figures as a table";
    ChartTruncated => "日志条目过多，最早几天的数字不完整。", "Too many ledger entries: the earliest days are incomplete.";
    // Ledger and keys; the watchlist.
    LkTitle => "日志与密钥", "Ledger and keys";
    LkCheckpoint => "最新签名检查点", "Latest signed checkpoint";
    LkCheckpointSize => "检查点覆盖的条目数", "Entries it covers";
    LkRoot => "树根哈希", "Tree root";
    LkSignedAt => "签名时间", "Signed at";
    LkAgeMinutes => "距今（分钟，按枢纽时钟）", "Age (minutes, hub clock)";
    LkNoCheckpoint => "尚未签署检查点。", "No checkpoint has been signed yet.";
    LkKeyName => "日志签名密钥名称", "Ledger signing key name";
    LkKeyId => "密钥编号", "Key id";
    LkVerifyTitle => "完整性校验", "Verify the ledger";
    LkVerifyExplained => "逐段重新计算每条日志的哈希，核对存储的默克尔树，并与已签名检查点的树根比对；与命令 gridhub audit verify 使用同一校验代码。", "Re-hashes every stored entry range by range, checks the stored Merkle tree and the roots of the signed checkpoints; the same code as `gridhub audit verify`.";
    LkVerifyButton => "开始校验", "Verify now";
    LkProgress => "校验进度", "Verification progress";
    LkVerifying => "正在校验……", "Verifying…";
    LkVerifyOk => "校验通过，已校验条目数：", "Verified OK. Entries checked:";
    LkVerifyFailed => "校验失败！首个不一致的条目序号：", "Verification FAILED. First bad entry index:";
    LkVerifyError => "校验未能完成：", "The check could not finish:";
    LkKeysTitle => "各类别的密钥版本", "Key versions per category";
    LkKeyCategory => "密钥类别", "Key category";
    LkKekVersion => "密钥加密密钥（KEK）版本", "KEK version";
    LkCurrent => "当前版本", "current";
    LkDeks => "所封装的数据密钥（DEK）数", "Data keys (DEKs) it wraps";
    LkWraps => "累计封装次数", "Wraps performed";
    LkWrapLimit => "单个版本封装次数超过此值即拒绝封装（2³² 的 90%）", "Wraps are refused past this many per version (90 % of 2^32)";
    LkRotateAfter => "单个版本封装次数达到此值时自动轮换", "The hub rotates a version by itself at this many wraps";
    LkKeyState => "状态", "State";
    LkRewrapped => "已迁移的数据密钥数", "Data keys rewrapped";
    LkStateActive => "在用（封装新数据密钥）", "active (wraps new data keys)";
    LkStateRewrap => "迁移中（仅解封）", "rewrapping (unwraps only)";
    LkStateRetired => "已停用（不再解封）", "retired (unwraps nothing)";
    LkRotate => "轮换密钥", "Rotate key";
    LkRotateExplained => "新版本立即用于新数据；旧版本的数据密钥在后台重新封装（不解密任何字段），完成后旧版本停用。", "A new version takes new data at once; the old version's data keys are rewrapped in the background (no field is decrypted), then it is retired.";
    LkRotated => "已轮换，新版本：", "Rotated; new version:";
    WatchTitle => "授权观察清单", "Grant watchlist";
    WatchExplained => "以下授权可能已不再需要（数据最小化原则），可在授权页面暂停或撤销。", "These grants may no longer be needed (data minimisation): suspend or revoke them on the grant's page.";
    WatchExpiring => "14 天内到期的授权", "Grants expiring within 14 days";
    WatchCasesClosed => "限于案件、但相关案件均已结案（或无在办分派）的授权", "Case-bound grants whose cases are all closed (or with no open assignment)";
    WatchUnused => "30 天未使用的授权", "Grants unused for 30 days";
    WatchDaysLeft => "剩余天数", "Days left";
    WatchLastUsed => "最近使用日", "Last used";
    WatchNeverUsed => "从未使用", "never";
    WatchIdleDays => "未使用天数", "Days unused";
    WatchClosedCases => "已结案件数", "Closed cases";
    WatchNone => "无。", "None.";
    ReachTitle => "某条记录现在谁能看到", "Who can see one record now";
    ReachExplained => "按决策引擎的规则计算（与数据拉取相同）：列出能看到该记录的部门、用途、各字段的披露级别、依据的授权及其有效期；限于案件的授权须经由分派给该部门的在办案件。只显示字段名和级别，不显示任何个人信息。", "Computed by the decision engine's rules (as a pull would be): the departments that could see the record, for which purpose, each field's level, the grant behind it and until when; case-bound grants only through an open case assigned to the department. Field names and levels only, never a value.";
    ReachRecordId => "记录编号", "Record id";
    ReachThroughCase => "经由在办案件", "Through open case";
    ReachNoCase => "无需案件", "no case needed";
    ReachNobody => "目前没有部门能看到这条记录。", "No department could see this record now.";
    ReachGrid => "所在网格", "Grid";
    // Admin: people and places.
    UsersTitle => "用户", "Users";
    UserTitle => "用户", "User";
    UserNew => "新建用户", "New user";
    UserInitialPassword => "初始密码（12–256 个字符）", "Initial password (12–256 characters)";
    UserUsernameRule => "3–64 个字符：字母、数字及 . _ - @。", "3–64 characters: letters, digits and . _ - @.";
    UserRolesLegend => "角色（至少一个）", "Roles (at least one)";
    UserGridsLegend => "网格（网格员至少一个）", "Grids (a grid worker needs at least one)";
    UserNoDepartment => "（无）", "(none)";
    UserCreatedAt => "创建时间（北京时间）", "Created (Beijing time)";
    UserActive => "启用中", "active";
    UserDisabledStatus => "已停用", "disabled";
    UserManage => "管理", "Manage";
    UserCreate => "创建用户", "Create user";
    UserCreated => "用户已创建，现在即可登录。", "User created; it can log in now.";
    UserSaveRoles => "保存角色", "Save roles";
    UserSaveGrids => "保存网格", "Save grids";
    UserRolesSaved => "角色已保存，下一次请求即生效。", "Roles saved; in force from the next request.";
    UserGridsSaved => "网格已保存，下一次请求即生效。", "Grids saved; in force from the next request.";
    UserDisable => "停用此用户", "Disable this user";
    UserEnable => "重新启用此用户", "Enable this user again";
    UserDisableExplained => "停用后该用户无法登录，已签发的令牌和控制台会话从下一次请求起失效。此操作记入审计日志，可随时重新启用。", "A disabled user cannot log in, and its tokens and console sessions stop working on their next request. Recorded in the audit ledger; it can be enabled again at any time.";
    UserDisabledNotice => "用户已停用。", "User disabled.";
    UserEnabledNotice => "用户已重新启用。", "User enabled again.";
    UserOwnAccount => "这是您自己的账户：不能停用自己。", "This is your own account: you cannot disable yourself.";
    UserNone => "尚无用户。", "No users yet.";
    FormProblems => "未作任何更改，请修正以下问题：", "Nothing was changed; fix these problems:";
    DeptTitle => "部门与管辖范围", "Departments";
    DeptNew => "新建部门", "New department";
    DeptId => "部门标识", "Department id";
    DeptIdRule => "2–63 个字符：小写字母、数字和连字符，以字母或数字开头。", "2–63 characters of a-z, 0-9 and -, starting with a letter or digit.";
    DeptName => "部门名称", "Department name";
    DeptJurisdiction => "管辖范围", "Jurisdiction";
    DeptPickerHelp => "勾选的网格连同其下所有子网格都在管辖范围内。", "A ticked grid brings every grid below it into the jurisdiction.";
    DeptCreate => "创建部门", "Create department";
    DeptCreated => "部门已创建。", "Department created.";
    DeptChange => "修改管辖范围", "Change the jurisdiction";
    DeptSaveJurisdiction => "保存管辖范围", "Save jurisdiction";
    DeptJurisdictionSaved => "管辖范围已保存，下一次请求即生效。", "Jurisdiction saved; in force from the next request.";
    DeptNone => "尚无部门。", "No departments yet.";
    GridsTitle => "网格", "Grids";
    GridTree => "网格层级", "Grid hierarchy";
    GridNew => "新建网格", "New grid";
    GridCode => "网格编码", "Grid code";
    GridCodeHelp => "上级网格由编码推出（去掉最后一段），且必须已存在；逻辑网格的编码以 L. 开头。", "The parent is implied by the code (drop the last segment) and must exist; logical grids have codes starting with L.";
    GridName => "网格名称", "Grid name";
    GridPhysical => "实体网格", "physical";
    GridLogical => "逻辑网格", "logical";
    GridCreate => "创建网格", "Create grid";
    GridCreated => "网格已创建。", "Grid created.";
    GridNone => "尚无网格。", "No grids yet.";
    PurposesTitle => "处理用途", "Purposes";
    PurposeNew => "登记用途", "Register a purpose";
    PurposeId => "用途标识", "Purpose id";
    PurposeIdRule => "2–64 个字符：小写字母、数字和连字符，以字母开头。", "2–64 characters of a-z, 0-9 and -, starting with a letter.";
    PurposeDescription => "说明", "Description";
    PurposeCreate => "登记", "Register";
    PurposeCreated => "用途已登记。", "Purpose registered.";
    // Admin: systems and the catalog.
    ClientsTitle => "客户端", "Clients";
    ClientId => "客户端标识", "Client id";
    ClientIssuer => "签发方", "Issuer";
    ClientIssuerHub => "本枢纽 CA", "hub CA";
    ClientIssuerExternal => "外部 CA", "external CA";
    ClientThumbprint => "证书指纹（x5t#S256）", "Certificate thumbprint (x5t#S256)";
    ClientExpires => "证书到期（北京时间）", "Certificate expires (Beijing time)";
    ClientDaysLeft => "天后到期", "days left";
    ClientExpiringSoon => "30 天内到期", "expires within 30 days";
    ClientExpired => "已过期", "expired";
    ClientActive => "有效", "active";
    ClientRevokedStatus => "已吊销", "revoked";
    ClientNone => "尚未登记任何客户端。", "No clients are registered.";
    ClientRegister => "登记客户端", "Register a client";
    ClientRegisterExplained => "上传部门系统生成的证书签名请求（CSR），由本枢纽 CA 签发证书；或粘贴外部 CA 签发的客户端证书。私钥始终留在部门系统中，切勿上传。", "Upload the certificate signing request (CSR) the department system made and the hub CA issues its certificate; or paste a client certificate issued by an external CA. The private key stays with the department system: never upload it.";
    ClientIdRule => "2–63 个字符：小写字母、数字和连字符，以字母或数字开头。", "2–63 characters of a-z, 0-9 and -, starting with a letter or digit.";
    ClientCredential => "证书来源（三选一）", "Certificate (give one)";
    ClientCsrFile => "CSR 文件（PEM）", "CSR file (PEM)";
    ClientCsrPem => "或粘贴 CSR（PEM）", "or paste the CSR (PEM)";
    ClientExternalCertificate => "或粘贴外部 CA 签发的证书（PEM）", "or paste a certificate from an external CA (PEM)";
    ClientAgeRecipient => "age 公钥（可选，用于加密交付）", "age recipient (optional, for sealed delivery)";
    ClientRegisterButton => "登记", "Register";
    ClientRegistered => "客户端已登记，证书如下。", "Client registered; its certificate is below.";
    ClientCertificate => "证书", "Certificate";
    ClientDownload => "下载证书（PEM）", "Download the certificate (PEM)";
    ClientCopy => "复制证书", "Copy the certificate";
    ClientCopied => "已复制到剪贴板。", "Copied to the clipboard.";
    ClientCertificatePublic => "证书是公开信息，可通过任何渠道交给部门系统；其私钥从未经过本枢纽。", "A certificate is public: hand it to the department system any way you like. Its private key never passed through the hub.";
    ClientRevoke => "吊销", "Revoke";
    ClientRevokeTitle => "吊销客户端", "Revoke client";
    ClientRevokeConfirm => "确认吊销？该客户端的证书及依此获得的所有令牌将从下一次请求起失效，且无法恢复。", "Revoke it? Its certificate and every token issued over it stop working on the next request; this cannot be undone.";
    ClientRevokeYes => "确认吊销", "Yes, revoke";
    ClientCancel => "取消", "Cancel";
    ClientRevokedNotice => "客户端已吊销。", "Client revoked.";
    ClientDetail => "客户端", "Client";
    ClientFormProblems => "表单有误，未执行任何操作：", "The form has problems; nothing was done:";
    CatalogTitle => "资源目录", "Catalog";
    CatalogOwner => "发布部门", "Owner department";
    CatalogGridSide => "网格端（无发布部门）", "grid side (no owner department)";
    CatalogType => "字段类型", "Type";
    CatalogSensitivity => "敏感程度", "Sensitivity";
    CatalogShare => "共享类别", "Share class";
    CatalogEncrypted => "加密", "Encrypted";
    CatalogIndexed => "盲索引", "Indexed";
    CatalogRequired => "必填", "Required";
    CatalogMask => "掩码规则", "Mask";
    CatalogGeneralize => "泛化规则", "Generalize";
    CatalogDescription => "说明", "Description";
    CatalogFieldsOf => "字段", "Fields of";
    CatalogNew => "新建数据类别", "New category";
    CatalogEdit => "修改数据类别", "Edit category";
    CatalogEditLink => "修改", "Edit";
    CatalogName => "类别名称", "Category name";
    CatalogNameRule => "小写字母开头，仅含小写字母、数字和下划线。", "Starts with a-z; only a-z, 0-9 and _.";
    CatalogFields => "字段（每行一个）", "Fields (one per line)";
    CatalogFieldSyntax => "每行一个字段，写法与 GET /v1/catalog 返回的字段对象相同（一行一个 JSON 对象）；空行忽略。例如：", "One field per line, each written as a field object of GET /v1/catalog (one JSON object per line); blank lines are ignored. For example:";
    CatalogRules => "已有记录的类别只能以不影响已存数据的方式修改：可以新增字段、放宽类型、修改说明、敏感程度、共享类别和掩码；不能删除字段、收窄类型、改变加密或盲索引，也不能更换发布部门。有未结束授权的类别不能更换发布部门。", "A category that holds records changes only in ways its records survive: add fields, widen types, change descriptions, sensitivity, share classes and masks; never remove a field, narrow its type, change its encryption or index, or change its owner. A category with grants that have not ended cannot change its owner.";
    CatalogSave => "保存类别", "Save category";
    CatalogCreated => "类别已创建。", "Category created.";
    CatalogChanged => "类别已修改。", "Category changed.";
    CatalogUnchanged => "内容没有变化，未写入。", "Nothing changed; nothing was written.";
    CatalogAdded => "新增字段", "Fields added";
    CatalogEntries => "涉及此类别的审计条目", "Ledger entries naming this category";
    CatalogContents => "类别目录", "Categories";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_both_languages_and_they_differ_where_they_should() {
        for text in Text::ALL {
            let (zh, en) = text.both();
            assert!(!zh.is_empty() && !en.is_empty(), "{text:?}");
            // The Chinese text is Chinese (or a name such as Gridhub, CSV, JSONL).
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
                    || *text == Text::SwitchLanguage,
                "{text:?} has no Chinese text"
            );
        }
    }

    #[test]
    fn the_default_language_is_chinese() {
        assert_eq!(Lang::of(&HeaderMap::new()), Lang::Zh);
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            axum::http::HeaderValue::from_static("a=b; gridhub_lang=en"),
        );
        assert_eq!(Lang::of(&headers), Lang::En);
    }
}
