//! Synthetic demo data: the grid tree of the fictional 临江市, its population (households and
//! persons), places and organizations.
//!
//! Pure and deterministic for a given seed, no I/O. Everything is invented: names are random
//! combinations of common characters; identity numbers (GB 11643) and phones are well-formed and
//! unique but belong to nobody. Ages are relative to the demo's reference date, 2026-11-24.

// The word lists live beside this file; declared here so `demo/mod.rs` only needs `pub mod synth;`.
#[path = "names.rs"]
mod names;

use std::collections::{HashMap, HashSet};

use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use time::{Date, Duration};

/// "Today" for ages, tags and birth dates.
const REFERENCE_DATE: Date = time::macros::date!(2026 - 11 - 24);
/// Per-function salts, so that one seed gives unrelated streams.
const SALT_TREE: u64 = 0x7472_6565_5f67_7269;
const SALT_POPULATION: u64 = 0x706f_7075_6c61_7469;
const SALT_PLACES: u64 = 0x706c_6163_6573_6f72;
/// GB 11643 weights of the 17 body digits, and the check characters by `sum % 11`.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";
/// GB 32100 (unified social credit code) character set and weights; GB 11714 weights.
const CREDIT_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ORG_CODE_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// A node of the demo grid tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoGrid {
    pub code: String,
    pub name: String,
    pub level: GridLevel,
}

/// Level of a grid in the hierarchy (the logical grid is `City`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GridLevel {
    City,
    District,
    Street,
    Community,
    Grid,
}

/// One generated record of a catalog category, located in a leaf grid.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticRecord {
    pub category: &'static str,
    pub grid: String,
    pub fields: Map<String, Value>,
}

/// A city (code "330110", e.g. 临江市), 2 districts ("330110.001"), 6 streets (3 per district,
/// "330110.001.002"), 24 communities (4 per street), and ~200 grids (7–10 per community, 5th
/// segment, e.g. "330110.001.002.003.007"), plus one logical grid "L.court-execution" (level
/// City, name 法院执行网格). Parent always before child in the Vec.
#[must_use]
pub fn grid_tree(seed: u64) -> Vec<DemoGrid> {
    let mut rng = StdRng::seed_from_u64(seed ^ SALT_TREE);
    let mut districts = shuffled(&mut rng, names::DISTRICTS);
    let mut streets = shuffled(&mut rng, names::STREETS);
    let mut communities = shuffled(&mut rng, names::COMMUNITIES);
    let mut out = Vec::with_capacity(260);
    let mut add = |code: &str, name: String, level| {
        let code = code.to_owned();
        out.push(DemoGrid { code, name, level });
    };
    let city = names::CITY_CODE;
    add(city, names::CITY_NAME.to_owned(), GridLevel::City);
    for d in 1..=2 {
        let d_code = format!("{city}.{d:03}");
        add(&d_code, named(&mut districts, d, "区"), GridLevel::District);
        for s in 1..=3 {
            let s_code = format!("{d_code}.{s:03}");
            add(&s_code, named(&mut streets, s, "街道"), GridLevel::Street);
            for c in 1..=4 {
                let c_code = format!("{s_code}.{c:03}");
                let c_name = named(&mut communities, c, "社区");
                add(&c_code, c_name.clone(), GridLevel::Community);
                for g in 1..=rng.random_range(7..=10) {
                    let (code, name) = (format!("{c_code}.{g:03}"), format!("{c_name}第{g}网格"));
                    add(&code, name, GridLevel::Grid);
                }
            }
        }
    }
    add("L.court-execution", "法院执行网格".into(), GridLevel::City);
    out
}

/// Households first, then their members as `person` records; `n` persons in total, spread over
/// the leaf grids (level Grid only). Empty when `grids` has no leaf grid.
#[must_use]
pub fn population(seed: u64, n: usize, grids: &[DemoGrid]) -> Vec<SyntheticRecord> {
    let leaves = leaves(grids);
    if leaves.is_empty() || n == 0 {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(seed ^ SALT_POPULATION);
    let surnames = Weighted::new(names::SURNAMES.iter().copied());
    let local = Weighted::new(names::AREA_LOCAL.iter().copied());
    let other = Weighted::new(names::AREA_OTHER.iter().copied());
    let kinds = Weighted::new(HOUSEHOLDS.iter().map(|h| (h, h.0)));
    let grid_pick = Weighted::new((0..leaves.len()).map(|i| (i, rng.random_range(50..=150))));
    let mut hh_seq = vec![0_u32; leaves.len()];
    let mut ids = IdBook::default();
    let mut phones = PhoneBook(names::PHONE_RESIDENT, HashSet::new());
    let mut households = Vec::with_capacity(n / 2 + 1);
    let mut persons = Vec::with_capacity(n);
    while persons.len() < n {
        let (mut plan, floating) = household(&mut rng, &kinds);
        plan.truncate(n - persons.len());
        let li = grid_pick.pick(&mut rng).unwrap_or(0);
        let (Some(leaf), Some(seq)) = (leaves.get(li), hh_seq.get_mut(li)) else {
            break;
        };
        *seq += 1;
        let number = format!("H{}{seq:04}", leaf.hh_prefix);
        let area = if floating { &other } else { &local }.pick(&mut rng);
        let family = surnames.pick(&mut rng).unwrap_or("王");
        let address = format!("{}{}", leaf.prefix, flat(&mut rng));
        let (low_income, size) = (rng.random_bool(0.04), plan.len());
        let residence = if floating { "floating" } else { "registered" };
        let mut head_name = None;
        for &(age, male, family_name) in &plan {
            let own = surnames.pick(&mut rng).unwrap_or("李");
            let surname = if family_name { family } else { own };
            let birth = birth_for_age(&mut rng, age);
            let (id, birth) = ids.issue(area.unwrap_or(330_110), birth, male);
            let name = person_name(&mut rng, surname, male, birth.year());
            if head_name.is_none() {
                head_name = Some(name.clone());
            }
            let age = age_on(birth, REFERENCE_DATE);
            let p_veteran = if male { 0.018 } else { 0.002 };
            let tags: Vec<&str> = [
                (age >= 60 && size == 1, "elderly_alone"),
                (rng.random_bool(0.02), "disabled"),
                (low_income, "low_income"),
                (age >= 20 && rng.random_bool(p_veteran), "veteran"),
                (age >= 18 && rng.random_bool(0.006), "key_person"),
                (age < 18, "minor"),
            ]
            .into_iter()
            .filter_map(|(on, tag)| on.then_some(tag))
            .collect();
            let phone = (age >= 12).then(|| phones.issue(&mut rng));
            let fields = fields([
                ("name", name.into()),
                ("id_number", id.into()),
                ("gender", if male { "male" } else { "female" }.into()),
                ("birth_date", iso_date(birth).into()),
                ("phone", phone.into()),
                ("address", address.clone().into()),
                ("household_id", number.clone().into()),
                ("residence", residence.into()),
                ("worker_notes", worker_note(&mut rng, &tags).into()),
                ("tags", tags.into()),
            ]);
            persons.push(record("person", leaf.code, fields));
        }
        let housing = match (floating, rng.random_range(0..100)) {
            (true, 0..75) | (false, 0..10) => "rented",
            (true, 75..95) | (false, 92..) => "other",
            (true, _) | (false, 10..82) => "owned",
            (false, _) => "public_housing",
        };
        let fields = fields([
            ("household_number", number.into()),
            ("head_name", head_name.unwrap_or_default().into()),
            ("address", address.into()),
            ("size", size.into()),
            ("housing", housing.into()),
        ]);
        households.push(record("household", leaf.code, fields));
    }
    households.append(&mut persons);
    households
}

/// Places (shops, restaurants, rental housing, schools…) about n/40, and organizations about
/// n/100, on leaf grids. Places first, then organizations; names unique within the result.
#[must_use]
pub fn places_and_organizations(
    seed: u64,
    n_residents: usize,
    grids: &[DemoGrid],
) -> Vec<SyntheticRecord> {
    let leaves = leaves(grids);
    if leaves.is_empty() {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(seed ^ SALT_PLACES);
    let surnames = Weighted::new(names::SURNAMES.iter().copied());
    let places = Weighted::new(names::PLACES.iter().map(|p| (p, p.1)));
    let orgs = Weighted::new(names::ORGANIZATIONS.iter().map(|o| (o, o.1)));
    let mut phones = PhoneBook(names::PHONE_BUSINESS, HashSet::new());
    let (mut taken, mut codes) = (HashSet::new(), HashSet::new());
    let (n_places, n_orgs) = ((n_residents + 20) / 40, (n_residents + 50) / 100);
    let mut out = Vec::with_capacity(n_places + n_orgs);
    for i in 0..n_places + n_orgs {
        let Some(leaf) = leaves.choose(&mut rng) else {
            break;
        };
        let surname = surnames.pick(&mut rng).unwrap_or("王");
        let (male, born) = (rng.random_bool(0.6), rng.random_range(1960..=2000));
        let person = person_name(&mut rng, surname, male, born);
        let phone = phones.issue(&mut rng);
        let address = if rng.random_bool(0.5) {
            format!("{}{}", leaf.prefix, flat(&mut rng))
        } else {
            let road = any(&mut rng, names::ROADS);
            format!("{}{road}{}号", leaf.prefix, rng.random_range(1..=300))
        };
        out.push(if i < n_places {
            let Some(&(kind, _, risky, templates)) = places.pick(&mut rng) else {
                break;
            };
            let name = unique(&mut taken, || expand(&mut rng, templates, leaf, surname));
            let (low, medium) = if risky { (60, 90) } else { (85, 97) };
            let risk = match rng.random_range(0..100) {
                r if r < low => "low",
                r if r < medium => "medium",
                _ => "high",
            };
            let fields = fields([
                ("name", name.into()),
                ("kind", kind.into()),
                ("address", address.into()),
                ("owner_name", person.into()),
                ("owner_phone", phone.into()),
                ("risk_level", risk.into()),
            ]);
            record("place", leaf.code, fields)
        } else {
            let Some(&(kind, _, head, (lo, hi), templates)) = orgs.pick(&mut rng) else {
                break;
            };
            let name = unique(&mut taken, || expand(&mut rng, templates, leaf, surname));
            let mut code = credit_code(&mut rng, head);
            while !codes.insert(code.clone()) {
                code = credit_code(&mut rng, head);
            }
            let (lo, hi) = (f64::from(lo.max(1)), f64::from(hi.max(lo)));
            let employees = (lo * (hi / lo).powf(rng.random_range(0.0..=1.0))).round() as u32;
            let fields = fields([
                ("name", name.into()),
                ("credit_code", code.into()),
                ("kind", kind.into()),
                ("legal_rep_name", person.into()),
                ("legal_rep_phone", phone.into()),
                ("address", address.into()),
                ("employees", employees.into()),
            ]);
            record("organization", leaf.code, fields)
        });
    }
    out
}

fn record(category: &'static str, grid: &str, fields: Map<String, Value>) -> SyntheticRecord {
    let grid = grid.to_owned();
    SyntheticRecord {
        category,
        grid,
        fields,
    }
}

/// A JSON object of the non-null values.
fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in pairs.into_iter().filter(|(_, v)| !v.is_null()) {
        map.insert(key.to_owned(), value);
    }
    map
}

fn shuffled(rng: &mut StdRng, list: &[&'static str]) -> std::vec::IntoIter<&'static str> {
    let mut v = list.to_vec();
    v.shuffle(rng);
    v.into_iter()
}

/// The next name of a shuffled list with its suffix (numbered once the list runs out).
fn named(list: &mut std::vec::IntoIter<&str>, n: u32, suffix: &str) -> String {
    let stem = list.next().map_or_else(|| format!("第{n}"), str::to_owned);
    stem + suffix
}

fn any<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or_default()
}

/// The flat part of an address: building, unit, floor and room.
fn flat(rng: &mut StdRng) -> String {
    let (b, u) = (rng.random_range(1..=36), rng.random_range(1..=4));
    let (f, r) = (rng.random_range(1..=18), rng.random_range(1..=4));
    format!("{b}幢{u}单元{f}{r:02}室")
}

/// A leaf grid with what the generators need of its ancestors.
struct Leaf<'a> {
    code: &'a str,
    /// Names of the ancestors, city to community: the start of every address.
    prefix: String,
    /// The community's name without 社区, the street's and the district's name.
    stem: String,
    street: String,
    district: String,
    /// Alphanumeric form of the code, for household numbers.
    hh_prefix: String,
}

fn leaves(grids: &[DemoGrid]) -> Vec<Leaf<'_>> {
    let by_code: HashMap<&str, &DemoGrid> = grids.iter().map(|g| (g.code.as_str(), g)).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, g) in grids
        .iter()
        .filter(|g| g.level == GridLevel::Grid)
        .enumerate()
    {
        let ancestors = g
            .code
            .match_indices('.')
            .filter_map(|(pos, _)| g.code.get(..pos));
        let ancestors: Vec<&DemoGrid> = ancestors.filter_map(|c| by_code.get(c).copied()).collect();
        let named = |level| {
            let found = ancestors.iter().find(|a| a.level == level);
            found.map_or_else(|| g.name.clone(), |a| a.name.clone())
        };
        let mut prefix: String = ancestors.iter().map(|a| a.name.as_str()).collect();
        if prefix.is_empty() {
            prefix.clone_from(&g.name);
        }
        let stem = named(GridLevel::Community);
        let alnum: String = g.code.chars().filter(char::is_ascii_alphanumeric).collect();
        let alnum = alnum.to_ascii_uppercase();
        let fresh = alnum.len() <= 20 && seen.insert(alnum.clone());
        out.push(Leaf {
            code: &g.code,
            prefix,
            stem: stem.strip_suffix("社区").unwrap_or(&stem).to_owned(),
            street: named(GridLevel::Street),
            district: named(GridLevel::District),
            hh_prefix: if fresh { alnum } else { format!("G{i:05}") },
        });
    }
    out
}

/// Sampling by integer weights (the first item when all weights are zero).
struct Weighted<T>(Vec<T>, Option<WeightedIndex<u32>>);

impl<T: Copy> Weighted<T> {
    fn new(pairs: impl IntoIterator<Item = (T, u32)>) -> Self {
        let (items, weights): (Vec<T>, Vec<u32>) = pairs.into_iter().unzip();
        Self(items, WeightedIndex::new(weights).ok())
    }

    fn pick(&self, rng: &mut StdRng) -> Option<T> {
        let index = self.1.as_ref().map_or(0, |w| rng.sample(w));
        self.0.get(index).copied()
    }
}

/// Household compositions: weight (‰ of households), ages of the head, couple, children,
/// elders (parents of the head), % floating. Sizes: 1: 25 %, 2: 30 %, 3: 25 %, 4: 12 %, 5–8: 8 %;
/// the 4 % one-person households of someone 60+ hold about 8 % of the elderly.
const HOUSEHOLDS: &[Composition] = &[
    (40, Ages::Elder, false, 0, 0, 5),
    (210, Ages::Single, false, 0, 0, 35),
    (105, Ages::Elder, true, 0, 0, 5),
    (120, Ages::Couple, true, 0, 0, 20),
    (75, Ages::Parent, false, 1, 0, 20),
    (187, Ages::Parent, true, 1, 0, 20),
    (25, Ages::Elder, true, 1, 0, 5),
    (38, Ages::Parent, false, 1, 1, 20),
    (60, Ages::Parent, true, 2, 0, 20),
    (60, Ages::Parent, true, 1, 1, 20),
    (26, Ages::Parent, true, 1, 2, 15),
    (14, Ages::Parent, true, 2, 1, 15),
    (24, Ages::Parent, true, 2, 2, 15),
    (10, Ages::Parent, true, 3, 2, 15),
    (6, Ages::Parent, true, 4, 2, 15),
];

type Composition = (u32, Ages, bool, usize, usize, u32);
const LONE_ADULT: Composition = (0, Ages::Single, false, 0, 0, 0);

#[derive(Clone, Copy)]
enum Ages {
    /// 60–100, fewer at higher ages.
    Elder,
    /// 18–59, mostly young.
    Single,
    /// 22–59.
    Couple,
    /// 24–56, parents of children.
    Parent,
}

/// Members (head first) as (age, male, takes the family surname), and whether floating.
fn household(rng: &mut StdRng, kinds: &Weighted<&Composition>) -> (Vec<(i32, bool, bool)>, bool) {
    let &(_, ages, couple, kids, elders, floating) = kinds.pick(rng).unwrap_or(&LONE_ADULT);
    let u = |rng: &mut StdRng| rng.random_range(0.0_f64..1.0);
    let (head_age, male_share) = match ages {
        Ages::Elder => (60 + (41.0 * u(rng).min(u(rng)).min(u(rng))) as i32, 0.38),
        Ages::Single => (18 + (42.0 * u(rng).min(u(rng))) as i32, 0.55),
        Ages::Couple => (rng.random_range(22..=59), 0.75),
        Ages::Parent => (rng.random_range(24..=56), 0.3),
    };
    let head_male = rng.random_bool(if couple { 0.75 } else { male_share });
    let mut out = vec![(head_age, head_male, head_male || !couple)];
    let mut youngest_parent = head_age;
    if couple {
        let floor = if head_age >= 60 { 60 } else { 20 };
        let age = (head_age + rng.random_range(-4..=4)).clamp(floor, 100);
        youngest_parent = youngest_parent.min(age);
        out.push((age, !head_male, !head_male));
    }
    let base = youngest_parent.max(20);
    for _ in 0..kids {
        let age = base - rng.random_range(20..=base.min(40));
        out.push((age, rng.random_bool(0.51), true));
    }
    let elder_age = (head_age + rng.random_range(22..=34)).min(100);
    let first_male = elders >= 2 || rng.random_bool(0.4);
    for k in 0..elders {
        let male = first_male == (k == 0);
        out.push(((elder_age + rng.random_range(-3..=3)).min(100), male, male));
    }
    (out, rng.random_range(0..100) < floating)
}

/// A birth date giving exactly `age` years on the reference date.
fn birth_for_age(rng: &mut StdRng, age: i32) -> Date {
    let year = REFERENCE_DATE.year() - age;
    let anchor = REFERENCE_DATE.replace_year(year).unwrap_or(REFERENCE_DATE);
    anchor
        .checked_sub(Duration::days(rng.random_range(0..365)))
        .unwrap_or(anchor)
}

fn age_on(birth: Date, at: Date) -> i32 {
    let day = |d: Date| (u8::from(d.month()), d.day());
    at.year() - birth.year() - i32::from(day(at) < day(birth))
}

fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn person_name(rng: &mut StdRng, surname: &str, male: bool, birth_year: i32) -> String {
    let pool = match (male, birth_year) {
        (true, ..1970) => names::GIVEN_MALE_OLD,
        (false, ..1970) => names::GIVEN_FEMALE_OLD,
        (true, ..2000) => names::GIVEN_MALE_MID,
        (false, ..2000) => names::GIVEN_FEMALE_MID,
        (true, _) => names::GIVEN_MALE_YOUNG,
        (false, _) => names::GIVEN_FEMALE_YOUNG,
    };
    let mut name = surname.to_owned();
    name.push_str(any(rng, pool));
    if rng.random_bool(0.72) {
        name.push_str(any(rng, pool));
    }
    name
}

/// Issues unique GB 11643 identity numbers: per (area, birth date, sex) a counter walks a
/// permutation of the 500 sequence numbers of that sex; when exhausted, the birth date moves
/// back a day (the returned date is the one in the number).
#[derive(Default)]
struct IdBook {
    issued: HashMap<(u32, i32, bool), u32>,
}

impl IdBook {
    fn issue(&mut self, area: u32, mut birth: Date, male: bool) -> (String, Date) {
        loop {
            let count = self
                .issued
                .entry((area, birth.to_julian_day(), male))
                .or_insert(0);
            if *count < 500 {
                let seq = (*count * 37 + 11) % 500 * 2 + u32::from(male);
                *count += 1;
                let (y, m, d) = (birth.year(), u8::from(birth.month()), birth.day());
                let body = format!("{area:06}{y:04}{m:02}{d:02}{seq:03}");
                let digits = body.chars().map(|c| c.to_digit(10).unwrap_or(0));
                let sum: u32 = digits.zip(ID_WEIGHTS).map(|(d, w)| d * w).sum();
                let check = ID_CHECK.get((sum % 11) as usize).copied().unwrap_or(b'0');
                return (format!("{body}{}", char::from(check)), birth);
            }
            match birth.previous_day() {
                Some(day) => birth = day,
                None => return (String::new(), birth),
            }
        }
    }
}

/// Unique mobile numbers from a set of prefixes.
struct PhoneBook(&'static [u32], HashSet<u64>);

impl PhoneBook {
    fn issue(&mut self, rng: &mut StdRng) -> String {
        loop {
            let prefix = u64::from(self.0.choose(rng).copied().unwrap_or(138));
            let number = prefix * 100_000_000 + rng.random_range(0..100_000_000);
            if self.1.insert(number) {
                return number.to_string();
            }
        }
    }
}

/// About 3 % of persons; more often for those a grid worker follows up.
fn worker_note(rng: &mut StdRng, tags: &[&str]) -> Option<String> {
    let (list, p) = match tags.first().copied() {
        Some("elderly_alone") => (names::NOTES_ELDERLY_ALONE, 0.15),
        Some("disabled") => (names::NOTES_DISABLED, 0.15),
        Some("low_income") => (names::NOTES_LOW_INCOME, 0.15),
        Some("key_person") => (names::NOTES_KEY_PERSON, 0.15),
        _ => (names::NOTES_GENERIC, 0.02),
    };
    rng.random_bool(p).then(|| any(rng, list).to_owned())
}

/// `make()` until the name is new (numbered after 20 tries); records it as taken.
fn unique(taken: &mut HashSet<String>, mut make: impl FnMut() -> String) -> String {
    let mut name = make();
    for n in 1_u32.. {
        if taken.insert(name.clone()) {
            break;
        }
        name = if n < 20 {
            make()
        } else {
            format!("{}（{n}）", make())
        };
    }
    name
}

/// Fills a random one of `templates`: `{stem}`, `{street}`, `{district}`, `{surname}`, `{n}`
/// (building), `{room}`, or a random word of the list of that name in `names::WORDS`.
fn expand(rng: &mut StdRng, templates: &[&str], leaf: &Leaf<'_>, surname: &str) -> String {
    let mut rest = any(rng, templates);
    let mut out = String::new();
    while let Some((before, after)) = rest.split_once('{') {
        out.push_str(before);
        let (token, tail) = after.split_once('}').unwrap_or((after, ""));
        match token {
            "stem" => out.push_str(&leaf.stem),
            "street" => out.push_str(&leaf.street),
            "district" => out.push_str(&leaf.district),
            "surname" => out.push_str(surname),
            "n" => out.push_str(&rng.random_range(1..=36).to_string()),
            "room" => out.push_str(&format!(
                "{}{:02}",
                rng.random_range(1..=18),
                rng.random_range(1..=4)
            )),
            _ => {
                let list = names::WORDS.iter().find(|(k, _)| *k == token);
                out.push_str(any(rng, list.map_or(&[][..], |&(_, words)| words)));
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// A well-formed unified social credit code (GB 32100): `head` (authority and type), the
/// city's area code, an organization code with its GB 11714 check character, a check character.
fn credit_code(rng: &mut StdRng, head: &str) -> String {
    let org: Vec<u32> = (0..8).map(|_| rng.random_range(0..10)).collect();
    let sum: u32 = org.iter().zip(ORG_CODE_WEIGHTS).map(|(d, w)| d * w).sum();
    let mut code = format!("{head}{}", names::CITY_CODE);
    code.extend(org.iter().filter_map(|&d| char::from_digit(d, 10)));
    code.push(match 11 - sum % 11 {
        10 => 'X',
        d => char::from_digit(d % 11, 10).unwrap_or('0'),
    });
    let value = |c: u8| CREDIT_CHARS.iter().position(|&x| x == c).unwrap_or(0) as u32;
    let sum: u32 = code
        .bytes()
        .zip(CREDIT_WEIGHTS)
        .map(|(c, w)| value(c) * w)
        .sum();
    let check = CREDIT_CHARS
        .get(((31 - sum % 31) % 31) as usize)
        .copied()
        .unwrap_or(b'0');
    code.push(char::from(check));
    code
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    const N: usize = 10_000;

    fn persons(records: &[SyntheticRecord]) -> Vec<&Map<String, Value>> {
        let people = records.iter().filter(|r| r.category == "person");
        people.map(|r| &r.fields).collect()
    }

    fn text<'a>(f: &'a Map<String, Value>, key: &str) -> &'a str {
        f.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{key} in {f:?}"))
    }

    fn tags(f: &Map<String, Value>) -> Vec<&str> {
        let tags = f["tags"].as_array().unwrap();
        tags.iter().map(|t| t.as_str().unwrap()).collect()
    }

    /// Age on 2026-11-24 from "YYYY-MM-DD", computed without the `time` crate.
    fn age(birth: &str) -> i32 {
        let parts: Vec<i32> = birth.split('-').map(|p| p.parse().unwrap()).collect();
        2026 - parts[0] - i32::from((11, 24) < (parts[1], parts[2]))
    }

    /// ISO 7064 MOD 11-2 over all 18 characters: weights 2^(17-i) mod 11, total ≡ 1 (mod 11).
    fn id_valid(id: &str) -> bool {
        let chars: Vec<char> = id.chars().collect();
        if chars.len() != 18 || !chars[..17].iter().all(char::is_ascii_digit) {
            return false;
        }
        let total: u64 = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let v = if c == 'X' {
                    10
                } else {
                    u64::from(c.to_digit(10).unwrap_or(99))
                };
                v * (1_u64 << (17 - i)) % 11
            })
            .sum();
        total % 11 == 1
    }

    fn setup() -> (Vec<DemoGrid>, Vec<SyntheticRecord>) {
        let grids = grid_tree(7);
        let pop = population(7, N, &grids);
        (grids, pop)
    }

    #[test]
    fn tree_shape() {
        let grids = grid_tree(1);
        let count = |l| grids.iter().filter(|g| g.level == l).count();
        assert_eq!(count(GridLevel::City), 2, "the city and the logical grid");
        assert_eq!(count(GridLevel::District), 2);
        assert_eq!(count(GridLevel::Street), 6);
        assert_eq!(count(GridLevel::Community), 24);
        assert!((168..=240).contains(&count(GridLevel::Grid)));
        assert_eq!(grids[0].code, "330110");
        let court = grids
            .iter()
            .find(|g| g.code == "L.court-execution")
            .unwrap();
        assert_eq!(
            (court.name.as_str(), court.level),
            ("法院执行网格", GridLevel::City)
        );
        let mut seen = HashSet::new();
        for g in &grids {
            if let Some((parent, last)) = g.code.rsplit_once('.')
                && !g.code.starts_with("L.")
            {
                assert!(seen.contains(parent), "{} before its parent", g.code);
                assert_eq!(last.len(), 3);
            }
            assert!(seen.insert(g.code.as_str()), "duplicate {}", g.code);
        }
        let depth = |g: &DemoGrid| g.code.split('.').count();
        let leaves = grids.iter().filter(|g| g.level == GridLevel::Grid);
        assert!(
            leaves
                .clone()
                .all(|g| depth(g) == 5 && g.name.contains("社区第"))
        );
        let names: HashSet<_> = grids.iter().map(|g| &g.name).collect();
        assert_eq!(names.len(), grids.len(), "grid names are unique");
        assert_eq!(grid_tree(1), grids);
    }

    #[test]
    fn population_counts_and_households() {
        let (grids, pop) = setup();
        let people = persons(&pop);
        assert_eq!(people.len(), N);
        let first_person = pop.iter().position(|r| r.category == "person").unwrap();
        assert!(
            pop[..first_person]
                .iter()
                .all(|r| r.category == "household")
        );
        assert!(pop[first_person..].iter().all(|r| r.category == "person"));
        let leaves: HashSet<_> = grids
            .iter()
            .filter(|g| g.level == GridLevel::Grid)
            .map(|g| &g.code)
            .collect();
        assert!(pop.iter().all(|r| leaves.contains(&r.grid)));
        let mut members: HashMap<&str, Vec<&Map<String, Value>>> = HashMap::new();
        for p in &people {
            members.entry(text(p, "household_id")).or_default().push(p);
        }
        let households: Vec<_> = pop[..first_person].iter().map(|r| &r.fields).collect();
        assert_eq!(households.len(), members.len());
        let mut sizes = [0_usize; 9];
        for h in &households {
            let number = text(h, "household_number");
            assert!(number.len() <= 32 && number.starts_with('H'), "{number}");
            let size = h["size"].as_u64().unwrap() as usize;
            let m = &members[number];
            assert_eq!(m.len(), size, "{number}");
            assert!((1..=30).contains(&size));
            sizes[size.min(5)] += 1;
            assert_eq!(text(h, "head_name"), text(m[0], "name"));
            assert!(m.iter().all(|p| text(p, "address") == text(h, "address")));
            assert!(["owned", "rented", "public_housing", "other"].contains(&text(h, "housing")));
            assert!(text(h, "address").starts_with("临江市") && text(h, "address").ends_with('室'));
        }
        let share = |k: usize| sizes[k] as f64 / households.len() as f64;
        for (k, want) in [(1, 0.25), (2, 0.30), (3, 0.25), (4, 0.12), (5, 0.08)] {
            assert!((share(k) - want).abs() < 0.03, "size {k}: {}", share(k));
        }
    }

    #[test]
    fn identity_numbers_are_valid_unique_and_consistent() {
        let (_, pop) = setup();
        let mut ids = HashSet::new();
        let mut phones = HashSet::new();
        for p in persons(&pop) {
            let id = text(p, "id_number");
            assert!(id_valid(id), "{id}");
            assert!(ids.insert(id), "duplicate {id}");
            assert_eq!(id[6..14], text(p, "birth_date").replace('-', ""));
            let odd = id[16..17].parse::<u32>().unwrap() % 2 == 1;
            assert_eq!(text(p, "gender"), if odd { "male" } else { "female" });
            let name = text(p, "name");
            assert!(
                (2..=4).contains(&name.chars().count()) && name.len() <= 64,
                "{name}"
            );
            match p.get("phone").and_then(Value::as_str) {
                Some(phone) => {
                    assert!(age(text(p, "birth_date")) >= 12);
                    assert!(phone.len() == 11 && phone.bytes().all(|b| b.is_ascii_digit()));
                    assert!(
                        ["13", "15", "17", "18", "19"].contains(&&phone[..2]),
                        "{phone}"
                    );
                    assert!(phones.insert(phone.to_owned()), "duplicate {phone}");
                }
                None => assert!(age(text(p, "birth_date")) < 12),
            }
        }
        let spots = places_and_organizations(7, N, &grid_tree(7));
        for r in &spots {
            let key = if r.category == "place" {
                "owner_phone"
            } else {
                "legal_rep_phone"
            };
            assert!(
                phones.insert(text(&r.fields, key).to_owned()),
                "phones unique across sets"
            );
        }
    }

    #[test]
    fn tags_ages_and_residence() {
        let (_, pop) = setup();
        let sizes: HashMap<&str, u64> = pop
            .iter()
            .filter(|r| r.category == "household")
            .map(|r| {
                (
                    text(&r.fields, "household_number"),
                    r.fields["size"].as_u64().unwrap(),
                )
            })
            .collect();
        let people = persons(&pop);
        let (mut elderly, mut alone, mut floating, mut minors) = (0, 0, 0, 0);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for p in &people {
            let (a, t) = (age(text(p, "birth_date")), tags(p));
            assert!((0..=100).contains(&a), "age {a}");
            assert_eq!(t.contains(&"minor"), a < 18);
            let single = sizes[text(p, "household_id")] == 1;
            assert_eq!(t.contains(&"elderly_alone"), a >= 60 && single);
            if t.contains(&"veteran") || t.contains(&"key_person") {
                assert!(a >= 18);
            }
            for tag in &t {
                *counts.entry(tag).or_default() += 1;
            }
            elderly += usize::from(a >= 60);
            alone += usize::from(t.contains(&"elderly_alone"));
            minors += usize::from(a < 18);
            floating += usize::from(text(p, "residence") == "floating");
            assert!(["registered", "floating"].contains(&text(p, "residence")));
        }
        let pct = |k: usize, of: usize| k as f64 * 100.0 / of as f64;
        assert!(
            (15.0..=25.0).contains(&pct(floating, N)),
            "floating {}",
            pct(floating, N)
        );
        assert!(
            (17.0..=24.0).contains(&pct(elderly, N)),
            "60+ {}",
            pct(elderly, N)
        );
        assert!(
            (5.0..=12.0).contains(&pct(alone, elderly)),
            "alone {}",
            pct(alone, elderly)
        );
        assert!(
            (12.0..=24.0).contains(&pct(minors, N)),
            "minors {}",
            pct(minors, N)
        );
        assert!((1.0..=3.0).contains(&pct(counts["disabled"], N)));
        assert!((2.0..=7.0).contains(&pct(counts["low_income"], N)));
        let notes = people
            .iter()
            .filter(|p| p.contains_key("worker_notes"))
            .count();
        assert!(
            (1.5..=5.0).contains(&pct(notes, N)),
            "notes {}",
            pct(notes, N)
        );
    }

    #[test]
    fn places_and_organizations_are_well_formed() {
        let grids = grid_tree(3);
        let out = places_and_organizations(3, N, &grids);
        let places: Vec<_> = out.iter().filter(|r| r.category == "place").collect();
        let orgs: Vec<_> = out
            .iter()
            .filter(|r| r.category == "organization")
            .collect();
        assert_eq!((places.len(), orgs.len()), (250, 100));
        let names: HashSet<_> = out.iter().map(|r| text(&r.fields, "name")).collect();
        assert_eq!(names.len(), out.len());
        let kinds = [
            "residential",
            "shop",
            "restaurant",
            "school",
            "hospital",
            "factory",
        ];
        let more = ["warehouse", "rental_housing", "public_venue", "other"];
        for p in &places {
            assert!(
                kinds.contains(&text(&p.fields, "kind")) || more.contains(&text(&p.fields, "kind"))
            );
            assert!(["low", "medium", "high"].contains(&text(&p.fields, "risk_level")));
            assert!(text(&p.fields, "address").starts_with("临江市"));
        }
        let lows = places
            .iter()
            .filter(|p| text(&p.fields, "risk_level") == "low")
            .count();
        assert!(lows * 2 > places.len());
        let allowed =
            |c: char| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"IOZSV".contains(c));
        let mut codes = HashSet::new();
        for o in &orgs {
            let code = text(&o.fields, "credit_code");
            assert!(code.len() == 18 && code.chars().all(allowed), "{code}");
            assert!(codes.insert(code));
            let kind = text(&o.fields, "kind");
            let kinds = [
                "company",
                "social_org",
                "government",
                "public_institution",
                "individual_business",
            ];
            assert!(kinds.contains(&kind));
            let employees = o.fields["employees"].as_u64().unwrap();
            assert!(employees <= 1_000_000);
        }
        assert_eq!(places_and_organizations(3, N, &grids), out);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let grids = grid_tree(11);
        assert_eq!(population(11, 500, &grids), population(11, 500, &grids));
        assert_ne!(population(11, 500, &grids), population(12, 500, &grids));
        assert_ne!(grid_tree(11), grid_tree(12));
    }

    #[test]
    fn edge_cases() {
        let grids = grid_tree(5);
        assert!(population(5, 0, &grids).is_empty());
        assert!(population(5, 10, &[]).is_empty());
        assert!(places_and_organizations(5, 10, &[]).is_empty());
        for n in [1, 2, 3, 7] {
            assert_eq!(persons(&population(5, n, &grids)).len(), n);
        }
        // Leaves without ancestors still work.
        let lone = [DemoGrid {
            code: "9.9".into(),
            name: "孤网格".into(),
            level: GridLevel::Grid,
        }];
        let pop = population(5, 50, &lone);
        assert_eq!(persons(&pop).len(), 50);
        assert!(pop.iter().all(|r| r.grid == "9.9"));
        assert_eq!(places_and_organizations(5, 400, &lone).len(), 14);
    }
}
