//! Static word lists for the synthetic demo data (see `synth.rs`).
//!
//! Every name produced from these lists is a random combination of common characters: it
//! describes nobody. Place names are invented (临江市 is a fictional city).

/// The fictional demo city.
pub const CITY_CODE: &str = "330110";
pub const CITY_NAME: &str = "临江市";

/// District stems (the generator appends 区).
pub const DISTRICTS: &[&str] = &["滨河", "云栖", "青山", "望湖"];

/// Street stems (the generator appends 街道).
pub const STREETS: &[&str] = &[
    "望江", "东湖", "凤凰", "白鹭", "柳岸", "金桥", "梧桐", "南屏", "翠苑", "湖滨", "长乐", "清波",
];

/// Community stems (the generator appends 社区); at least 24 are needed.
pub const COMMUNITIES: &[&str] = &[
    "春晓", "望月", "桂花", "丹桂", "枫林", "兰亭", "竹园", "荷塘", "杏坛", "梅苑", "松涛", "碧水",
    "青石", "彩虹", "朝阳", "晨光", "锦绣", "和平", "幸福", "新桥", "古塘", "柳营", "紫荆", "银杏",
    "芙蓉", "明珠", "星河", "云溪", "玉泉", "花港", "滨江", "雅苑", "景湖", "文澜", "芳草", "金沙",
];

/// Road names for street-number addresses of places and organizations.
#[rustfmt::skip]
pub const ROADS: &[&str] = &[
    "文化路", "建设路", "人民路", "解放路", "新华路", "中山路", "学院路", "江滨路", "凤起路", "庆春路",
    "环城北路", "东风路", "和睦路", "兴业街", "公园路", "河坊街", "花园路", "工业路", "创业大道", "平安街",
];

/// Surnames with a relative frequency (roughly national frequencies, in units of 0.01 %).
#[rustfmt::skip]
pub const SURNAMES: &[(&str, u32)] = &[
    ("王", 710), ("李", 700), ("张", 670), ("刘", 540), ("陈", 460), ("杨", 310), ("黄", 250),
    ("赵", 200), ("吴", 200), ("周", 190), ("徐", 150), ("孙", 150), ("马", 120), ("朱", 120),
    ("胡", 110), ("郭", 110), ("何", 100), ("林", 100), ("高", 100), ("罗", 90), ("郑", 90),
    ("梁", 80), ("谢", 70), ("宋", 60), ("唐", 60), ("许", 50), ("韩", 50), ("冯", 50), ("邓", 50),
    ("曹", 50), ("彭", 50), ("曾", 40), ("肖", 40), ("田", 40), ("董", 40), ("袁", 40), ("潘", 40),
    ("于", 40), ("蒋", 40), ("蔡", 40), ("余", 40), ("杜", 30), ("叶", 30), ("程", 30), ("苏", 30),
    ("魏", 30), ("吕", 30), ("丁", 30), ("任", 30), ("沈", 30), ("姚", 30), ("卢", 30), ("姜", 30),
    ("崔", 30), ("钟", 30), ("谭", 20), ("陆", 20), ("汪", 20), ("范", 20), ("金", 20), ("石", 20),
    ("廖", 20), ("贾", 20), ("夏", 20), ("韦", 20), ("付", 20), ("方", 20), ("白", 20), ("邹", 20),
    ("孟", 20), ("熊", 20), ("秦", 20), ("邱", 20), ("江", 20), ("尹", 20), ("薛", 20), ("闫", 20),
    ("段", 20), ("雷", 20), ("侯", 20), ("龙", 20), ("史", 20), ("陶", 10), ("黎", 10), ("贺", 10),
    ("顾", 10), ("毛", 10), ("郝", 10), ("龚", 10), ("邵", 10), ("万", 10), ("钱", 10), ("严", 10),
    ("章", 10), ("武", 10), ("戴", 10), ("莫", 10), ("孔", 10), ("楼", 5), ("应", 5), ("欧阳", 2),
    ("诸葛", 1), ("司马", 1), ("上官", 1),
];

/// Given-name characters by sex and generation (born before 1970, 1970–1999, 2000 on).
pub const GIVEN_MALE_OLD: &[&str] = &[
    "国", "建", "华", "明", "军", "平", "德", "福", "荣", "根", "宝", "忠", "富", "海", "金", "林",
    "强", "志", "祥", "庆", "兴", "有", "文", "生", "发", "财", "光", "春", "永", "水",
];
pub const GIVEN_FEMALE_OLD: &[&str] = &[
    "秀", "英", "兰", "凤", "珍", "玉", "芳", "桂", "梅", "琴", "素", "美", "月", "花", "翠", "云",
    "菊", "莲", "彩", "金", "娥", "霞", "萍", "爱", "淑", "红",
];
pub const GIVEN_MALE_MID: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "超", "斌", "鹏", "辉", "峰", "刚", "波", "亮", "健",
    "飞", "俊", "东", "敏", "毅", "晓", "明", "华", "林", "海", "成", "浩", "龙", "凯",
];
pub const GIVEN_FEMALE_MID: &[&str] = &[
    "丽", "娜", "敏", "静", "艳", "娟", "霞", "燕", "玲", "婷", "雪", "慧", "红", "琳", "洁", "倩",
    "颖", "晶", "莉", "蕾", "佳", "媛", "璐", "薇", "晓", "丹",
];
pub const GIVEN_MALE_YOUNG: &[&str] = &[
    "子", "轩", "浩", "宇", "博", "文", "泽", "睿", "皓", "航", "一", "晨", "铭", "辰", "俊", "逸",
    "宸", "梓", "昊", "阳", "然", "煜", "锦", "奕", "嘉", "承", "诚", "涵", "安", "沐",
];
pub const GIVEN_FEMALE_YOUNG: &[&str] = &[
    "欣", "怡", "萱", "涵", "雨", "佳", "悦", "诗", "思", "嘉", "梓", "琪", "若", "可", "心", "语",
    "彤", "晴", "妍", "馨", "瑶", "沐", "依", "一", "诺", "雅", "安", "芷", "汐", "然",
];

/// Area codes (GB/T 2260) of residents registered locally, with weights.
#[rustfmt::skip]
pub const AREA_LOCAL: &[(u32, u32)] = &[
    (330_110, 50), (330_102, 10), (330_106, 10), (330_122, 8), (330_105, 6), (330_108, 6),
    (330_109, 5), (330_127, 5),
];
/// Area codes of floating residents from other provinces (and farther Zhejiang cities).
#[rustfmt::skip]
pub const AREA_OTHER: &[(u32, u32)] = &[
    (410_102, 12), (510_104, 10), (340_104, 12), (360_102, 10), (420_106, 10), (430_104, 8),
    (500_103, 6), (520_102, 5), (450_103, 5), (130_102, 4), (320_106, 5), (330_326, 8),
    (330_523, 5),
];

/// Mobile prefixes used for residents.
#[rustfmt::skip]
pub const PHONE_RESIDENT: &[u32] = &[
    130, 131, 132, 133, 134, 137, 138, 150, 151, 152, 153, 155, 157, 158, 159, 173, 176, 178, 180,
    181, 182, 183, 185, 187, 188, 191, 193, 195, 198,
];
/// Mobile prefixes used for place owners and legal representatives (disjoint from the above,
/// so that phones stay unique across both generators).
pub const PHONE_BUSINESS: &[u32] = &[135, 136, 139, 156, 177, 184, 186, 189, 199];

/// Word lists for the `{token}` placeholders of the name templates below (besides `stem`,
/// `street`, `district`, `surname`, `n` and `room`, which the generator fills in).
#[rustfmt::skip]
pub const WORDS: &[(&str, &[&str])] = &[
    ("city", &[CITY_NAME]),
    ("short", &["临江"]),
    ("shop", &[
        "便利店", "五金店", "水果店", "理发店", "超市", "药房", "烟酒店", "服装店", "文具店", "花店",
        "粮油店", "电动车维修店", "手机维修店", "干洗店", "母婴店",
    ]),
    ("food", &[
        "面馆", "小吃店", "饺子馆", "家常菜馆", "快餐店", "奶茶店", "馄饨店", "烧烤店", "米粉店",
        "包子铺", "砂锅店", "麻辣烫",
    ]),
    ("brand", &[
        "金茂", "恒达", "鑫源", "华瑞", "永兴", "宏发", "嘉禾", "瑞丰", "天成", "新源", "博远", "凯盛",
        "隆泰", "安康", "顺通", "鼎盛", "同创", "宇辰", "汇丰源", "绿野",
    ]),
    ("estate", &["花园", "小区", "苑", "家园", "公寓", "新村"]),
    ("school", &["小学", "幼儿园", "中学", "实验小学"]),
    ("clinic", &["社区卫生服务站", "诊所", "口腔门诊", "中医诊所"]),
    ("factory", &["机械厂", "纺织厂", "食品厂", "包装厂", "塑料制品厂", "五金厂", "服装厂"]),
    ("store", &["物流仓库", "冷链仓库", "仓储中心", "快递分拣中心"]),
    ("venue", &["文化礼堂", "健身广场", "图书室", "党群服务中心", "老年活动中心", "篮球场", "儿童乐园"]),
    ("misc", &["快递驿站", "停车场", "菜市场", "充电站", "废品回收站"]),
    ("industry", &[
        "物业管理", "建筑工程", "电子科技", "贸易", "餐饮管理", "家政服务", "物流", "文化传媒",
        "网络科技", "机械制造", "纺织", "食品", "装饰设计", "环保科技", "医疗器械", "教育咨询",
    ]),
    ("society", &[
        "老年人协会", "志愿者协会", "书画协会", "红白理事会", "志愿服务队", "太极拳协会", "慈善分会",
        "邻里互助会",
    ]),
    ("office", &["办事处", "综合行政执法中队", "司法所", "市场监督管理所", "退役军人服务站"]),
    ("institute", &["社区卫生服务中心", "文化站", "中心小学", "中心幼儿园", "便民服务中心"]),
];

/// Place kinds of the catalog: weight, whether the kind is riskier, name templates.
#[rustfmt::skip]
pub const PLACES: &[(&str, u32, bool, &[&str])] = &[
    ("shop", 28, false, &["{stem}{shop}", "{brand}{shop}"]),
    ("restaurant", 20, false, &["老{surname}{food}", "{surname}记{food}", "{stem}{food}"]),
    ("rental_housing", 20, true, &["{stem}{n}幢{room}室出租房"]),
    ("residential", 7, false, &["{brand}{estate}"]),
    ("school", 3, false, &["{city}{stem}{school}"]),
    ("hospital", 3, false, &["{stem}{clinic}", "{surname}氏{clinic}"]),
    ("factory", 5, true, &["{short}{brand}{factory}"]),
    ("warehouse", 4, true, &["{brand}{store}"]),
    ("public_venue", 6, false, &["{stem}{venue}"]),
    ("other", 4, false, &["{stem}{misc}"]),
];

/// An organization kind; see [`ORGANIZATIONS`].
pub type OrgKind = (
    &'static str,
    u32,
    &'static str,
    (u32, u32),
    &'static [&'static str],
);

/// Organization kinds of the catalog: weight, the first two characters of the credit code
/// (registering authority and type), employees (log-uniform between the bounds), name templates.
#[rustfmt::skip]
pub const ORGANIZATIONS: &[OrgKind] = &[
    ("company", 45, "91", (2, 800), &[
        "{city}{stem}{industry}有限公司", "{city}{brand}{industry}有限公司", "{short}{brand}{industry}有限公司",
    ]),
    ("individual_business", 25, "92", (1, 8), &[
        "{city}{district}老{surname}{food}", "{city}{district}{surname}记{shop}", "{stem}{shop}",
    ]),
    ("social_org", 12, "51", (1, 30), &["{street}{society}", "{stem}社区{society}"]),
    ("public_institution", 10, "12", (15, 400), &["{street}{institute}"]),
    ("government", 8, "11", (8, 120), &["{stem}社区居民委员会", "{street}{office}", "{street}{office}"]),
];

/// Short notes of a grid worker, by context. Invented, generic, no real data.
pub const NOTES_ELDERLY_ALONE: &[&str] = &[
    "独居老人，每周上门探访一次。",
    "子女在外地工作，已登记紧急联系人。",
    "行动不便，已联系助餐服务。",
    "冬季注意用电安全，已提醒。",
];
pub const NOTES_DISABLED: &[&str] = &[
    "已办理残疾人证，协助申请辅具。",
    "需无障碍设施，已反馈社区。",
    "每月随访一次。",
];
pub const NOTES_LOW_INCOME: &[&str] = &[
    "低保家庭，材料已年审。",
    "已协助申请临时救助。",
    "家中有慢性病患者，关注医疗救助。",
];
pub const NOTES_KEY_PERSON: &[&str] = &["按要求定期走访。", "已建立联系，情况稳定。"];
pub const NOTES_GENERIC: &[&str] = &[
    "电话已核实。",
    "新搬入，已完成登记。",
    "租户信息已更新。",
    "邻里纠纷已调解。",
    "已加入楼道微信群。",
    "车辆信息待补充。",
];
