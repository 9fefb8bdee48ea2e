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
    // Oversight: anomalies and charts.
    // Ledger and keys; the watchlist.
    // Admin: people and places.
    // Admin: systems and the catalog.
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
