//! Synthetic Chinese names: a common surname and one or two given-name characters drawn at
//! random, so that no name is taken from a real person's record.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

/// Common surnames with their pinyin (for e-mail addresses), most frequent first.
const SURNAMES: &[(&str, &str)] = &[
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("高", "gao"),
    ("林", "lin"),
    ("罗", "luo"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("许", "xu"),
    ("韩", "han"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
    ("彭", "peng"),
    ("曾", "zeng"),
    ("肖", "xiao"),
    ("田", "tian"),
    ("董", "dong"),
    ("袁", "yuan"),
    ("潘", "pan"),
    ("蒋", "jiang"),
    ("蔡", "cai"),
    ("余", "yu"),
    ("杜", "du"),
    ("叶", "ye"),
    ("程", "cheng"),
    ("苏", "su"),
    ("魏", "wei"),
    ("吕", "lv"),
    ("丁", "ding"),
    ("沈", "shen"),
    ("姚", "yao"),
    ("钟", "zhong"),
    ("陆", "lu"),
    ("汪", "wang"),
    ("金", "jin"),
    ("方", "fang"),
    ("俞", "yu"),
    ("严", "yan"),
];

const MALE: &[char] = &[
    '伟', '强', '磊', '军', '勇', '杰', '涛', '斌', '超', '明', '刚', '平', '辉', '鹏', '飞', '鑫', '波', '宇', '浩',
    '凯', '健', '俊', '帆', '旭', '宁', '龙', '洋', '峰', '建', '国', '志', '文', '海', '东', '亮', '博', '轩', '睿',
    '泽', '诚', '德', '荣', '卫', '忠', '晨', '然',
];

const FEMALE: &[char] = &[
    '芳', '娜', '敏', '静', '丽', '艳', '娟', '霞', '秀', '玲', '燕', '婷', '雪', '慧', '红', '英', '梅', '琳', '颖',
    '倩', '晶', '欣', '洁', '萍', '月', '莉', '丹', '蕾', '薇', '佳', '怡', '悦', '璐', '瑶', '琪', '涵', '晓', '雯',
    '兰', '凤',
];

/// Characters either sex is given.
const SHARED: &[char] = &[
    '华', '文', '玉', '春', '晓', '金', '永', '子', '思', '一', '嘉', '安', '心', '雨',
];

/// A generated name: the full name and the surname's pinyin.
pub struct Name {
    pub full: String,
    pub surname_pinyin: &'static str,
}

/// A surname, favouring the common ones as a population would.
pub fn surname(rng: &mut StdRng) -> (&'static str, &'static str) {
    // Squaring a uniform number leans towards the front of the list.
    let u: f64 = rng.random();
    let i = ((u * u) * SURNAMES.len() as f64) as usize;
    SURNAMES[i.min(SURNAMES.len() - 1)]
}

fn given_char(rng: &mut StdRng, female: bool) -> char {
    let own = if female { FEMALE } else { MALE };
    let pool = if rng.random_bool(0.2) { SHARED } else { own };
    *pool.choose(rng).unwrap_or(&'华')
}

/// A full name for a person of that sex with the given surname.
fn with_surname(rng: &mut StdRng, surname: (&'static str, &'static str), female: bool) -> Name {
    let mut full = surname.0.to_string();
    full.push(given_char(rng, female));
    if rng.random_bool(0.65) {
        full.push(given_char(rng, female));
    }
    Name {
        full,
        surname_pinyin: surname.1,
    }
}

/// A name for a relative who shares `of`'s surname.
pub fn same_family(rng: &mut StdRng, of: &str, female: bool) -> Name {
    match SURNAMES.iter().find(|(s, _)| of.starts_with(s)) {
        Some(s) => with_surname(rng, *s, female),
        None => person(rng, female),
    }
}

/// A full name for a person of that sex.
pub fn person(rng: &mut StdRng, female: bool) -> Name {
    let s = surname(rng);
    with_surname(rng, s, female)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn names_are_a_surname_and_one_or_two_characters() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let name = person(&mut rng, true);
            let count = name.full.chars().count();
            assert!((2..=3).contains(&count), "{}", name.full);
            assert!(
                SURNAMES
                    .iter()
                    .any(|(s, p)| name.full.starts_with(s) && *p == name.surname_pinyin)
            );
        }
    }
}
