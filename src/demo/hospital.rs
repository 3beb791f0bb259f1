//! The synthetic hospital every stage draws from: its name, departments with their diagnoses and
//! doctors, the cities its patients come from, and the staff the demo acts as. One fixed list,
//! so a department code means the same thing on patients, plans, cases, surveys and mentions.

use hcrm_kit::auth::Role;

/// The hospital's name as patients write it, and the other names it goes by online.
pub const HOSPITAL: &str = "仁心医院";
pub const HOSPITAL_TERMS: &[&str] = &["仁心医院", "仁心总院", "Renxin Hospital"];

/// A diagnosis: ICD-10 code and how the record names it.
pub type Diagnosis = (&'static str, &'static str);

#[derive(Debug)]
pub struct Department {
    pub code: &'static str,
    pub zh: &'static str,
    /// English name, as the directory shows it.
    pub en: &'static str,
    /// Conditions, symptoms and keywords the department treats: what callers ask the guide desk
    /// about, in Chinese and in English.
    pub treats: &'static [&'static str],
    pub treats_en: &'static [&'static str],
    /// Where its clinic is: building, floor and rooms.
    pub location: (&'static str, &'static str, &'static str),
    /// The department's desk phone.
    pub phone: &'static str,
    /// Short names people use in posts (`心内科`).
    pub aliases: &'static [&'static str],
    pub diagnoses: &'static [Diagnosis],
    /// Doctors' names: invented, two or three characters like any Chinese name.
    pub doctors: &'static [&'static str],
    /// Share of the patients whose responsible department it is, in per cent.
    pub share: u32,
    /// Patients' ages (min, max).
    pub ages: (u32, u32),
    /// Whether its patients stay on a ward (and are discharged).
    pub inpatient: bool,
}

pub const DEPARTMENTS: &[Department] = &[
    Department {
        code: "cardiology",
        zh: "心血管内科",
        en: "Cardiology",
        treats: &[
            "胸痛",
            "胸闷",
            "心悸",
            "高血压",
            "冠心病",
            "心绞痛",
            "心肌梗死",
            "心律失常",
            "房颤",
            "心力衰竭",
            "早搏",
            "血压高",
        ],
        treats_en: &[
            "chest pain",
            "palpitations",
            "hypertension",
            "high blood pressure",
            "coronary heart disease",
            "angina",
            "heart attack",
            "arrhythmia",
            "atrial fibrillation",
            "heart failure",
        ],
        location: ("门诊楼", "3", "301-306"),
        phone: "0571-87236301",
        aliases: &["心内科", "心血管内科"],
        diagnoses: &[
            ("I10", "原发性高血压"),
            ("I20.0", "不稳定型心绞痛"),
            ("I21.9", "急性心肌梗死"),
            ("I48", "心房颤动"),
            ("I50.9", "心力衰竭"),
        ],
        doctors: &["林国栋", "许慧芳", "韩志远"],
        share: 16,
        ages: (45, 88),
        inpatient: true,
    },
    Department {
        code: "orthopedics",
        zh: "骨科",
        en: "Orthopedics",
        treats: &[
            "骨折",
            "关节痛",
            "膝关节痛",
            "腰痛",
            "腰椎间盘突出",
            "颈椎病",
            "骨质疏松",
            "扭伤",
            "运动损伤",
        ],
        treats_en: &[
            "fracture",
            "joint pain",
            "knee pain",
            "back pain",
            "herniated disc",
            "osteoporosis",
            "sprain",
            "sports injury",
        ],
        location: ("门诊楼", "4", "401-405"),
        phone: "0571-87236401",
        aliases: &["骨科"],
        diagnoses: &[
            ("S72.0", "股骨颈骨折"),
            ("M17.1", "膝关节骨性关节炎"),
            ("M51.2", "腰椎间盘突出症"),
            ("S82.2", "胫骨干骨折"),
        ],
        doctors: &["郑建华", "罗晓峰"],
        share: 12,
        ages: (18, 85),
        inpatient: true,
    },
    Department {
        code: "respiratory",
        zh: "呼吸内科",
        en: "Respiratory Medicine",
        treats: &[
            "咳嗽",
            "发热咳嗽",
            "咳痰",
            "气喘",
            "呼吸困难",
            "肺炎",
            "慢阻肺",
            "哮喘",
            "肺结节",
        ],
        treats_en: &[
            "cough",
            "shortness of breath",
            "wheezing",
            "pneumonia",
            "copd",
            "asthma",
            "lung nodule",
        ],
        location: ("门诊楼", "3", "310-314"),
        phone: "0571-87236310",
        aliases: &["呼吸内科", "呼吸科"],
        diagnoses: &[
            ("J18.9", "社区获得性肺炎"),
            ("J44.1", "慢性阻塞性肺疾病急性加重"),
            ("J45.9", "支气管哮喘"),
        ],
        doctors: &["沈嘉宁", "曹立新"],
        share: 11,
        ages: (30, 90),
        inpatient: true,
    },
    Department {
        code: "gastroenterology",
        zh: "消化内科",
        en: "Gastroenterology",
        treats: &[
            "胃痛",
            "腹胀",
            "反酸",
            "恶心呕吐",
            "便血",
            "胃炎",
            "胃溃疡",
            "胃镜",
            "肠镜",
            "消化不良",
        ],
        treats_en: &[
            "stomach ache",
            "bloating",
            "acid reflux",
            "nausea",
            "vomiting",
            "gastritis",
            "stomach ulcer",
            "gastroscopy",
            "colonoscopy",
            "indigestion",
        ],
        location: ("门诊楼", "2", "210-215"),
        phone: "0571-87236210",
        aliases: &["消化内科", "消化科"],
        diagnoses: &[("K29.7", "慢性胃炎"), ("K25.9", "胃溃疡"), ("K92.2", "消化道出血")],
        doctors: &["叶文博", "蒋欣怡"],
        share: 10,
        ages: (25, 85),
        inpatient: true,
    },
    Department {
        code: "neurology",
        zh: "神经内科",
        en: "Neurology",
        treats: &[
            "头痛",
            "头晕",
            "眩晕",
            "肢体麻木",
            "脑梗",
            "中风",
            "癫痫",
            "帕金森",
            "失眠",
            "记忆力下降",
        ],
        treats_en: &[
            "headache",
            "dizziness",
            "vertigo",
            "numbness",
            "stroke",
            "epilepsy",
            "seizure",
            "parkinson disease",
            "insomnia",
            "memory loss",
        ],
        location: ("门诊楼", "5", "501-505"),
        phone: "0571-87236501",
        aliases: &["神经内科"],
        diagnoses: &[("I63.9", "脑梗死"), ("G40.9", "癫痫"), ("G20", "帕金森病")],
        doctors: &["彭致远", "袁思琪"],
        share: 9,
        ages: (40, 90),
        inpatient: true,
    },
    Department {
        code: "endocrinology",
        zh: "内分泌科",
        en: "Endocrinology",
        treats: &[
            "糖尿病",
            "血糖高",
            "甲亢",
            "甲状腺结节",
            "甲减",
            "肥胖",
            "多饮多尿",
            "骨代谢",
        ],
        treats_en: &[
            "diabetes",
            "high blood sugar",
            "hyperthyroidism",
            "thyroid nodule",
            "hypothyroidism",
            "obesity",
            "excessive thirst",
        ],
        location: ("门诊楼", "5", "510-513"),
        phone: "0571-87236510",
        aliases: &["内分泌科"],
        diagnoses: &[
            ("E11.9", "2型糖尿病"),
            ("E05.9", "甲状腺功能亢进症"),
            ("E66.9", "肥胖症"),
        ],
        doctors: &["杜明轩"],
        share: 9,
        ages: (25, 85),
        inpatient: true,
    },
    Department {
        code: "general-surgery",
        zh: "普外科",
        en: "General Surgery",
        treats: &[
            "腹痛",
            "阑尾炎",
            "疝气",
            "胆结石",
            "胆囊炎",
            "甲状腺手术",
            "乳腺肿块",
            "体表肿物",
        ],
        treats_en: &[
            "abdominal pain",
            "appendicitis",
            "hernia",
            "gallstones",
            "cholecystitis",
            "breast lump",
            "lump",
        ],
        location: ("门诊楼", "4", "410-415"),
        phone: "0571-87236410",
        aliases: &["普外科", "普通外科"],
        diagnoses: &[("K35.8", "急性阑尾炎"), ("K40.9", "腹股沟疝"), ("K80.2", "胆囊结石")],
        doctors: &["魏承泽", "谢一鸣"],
        share: 9,
        ages: (16, 85),
        inpatient: true,
    },
    Department {
        code: "obstetrics",
        zh: "妇产科",
        en: "Obstetrics and Gynecology",
        treats: &[
            "怀孕",
            "产检",
            "孕期检查",
            "月经不调",
            "妇科炎症",
            "卵巢囊肿",
            "子宫肌瘤",
            "备孕",
        ],
        treats_en: &[
            "pregnancy",
            "prenatal check",
            "irregular periods",
            "ovarian cyst",
            "uterine fibroids",
            "fertility",
        ],
        location: ("妇儿楼", "2", "201-208"),
        phone: "0571-87236201",
        aliases: &["妇产科", "产科"],
        diagnoses: &[("O80", "单胎顺产"), ("O82", "剖宫产"), ("N83.2", "卵巢囊肿")],
        doctors: &["苏婉清", "程雅文"],
        share: 8,
        ages: (22, 42),
        inpatient: true,
    },
    Department {
        code: "pediatrics",
        zh: "儿科",
        en: "Pediatrics",
        treats: &[
            "小儿发热",
            "小儿咳嗽",
            "小儿腹泻",
            "儿童疫苗",
            "儿童生长发育",
            "手足口病",
            "婴儿湿疹",
        ],
        treats_en: &[
            "child fever",
            "child cough",
            "child diarrhea",
            "vaccination",
            "child growth",
            "hand foot and mouth disease",
            "infant eczema",
        ],
        location: ("妇儿楼", "1", "101-110"),
        phone: "0571-87236101",
        aliases: &["儿科"],
        diagnoses: &[
            ("J06.9", "急性上呼吸道感染"),
            ("J21.9", "毛细支气管炎"),
            ("A09", "感染性腹泻"),
        ],
        doctors: &["唐晓雯", "邓可欣"],
        share: 9,
        ages: (0, 14),
        inpatient: true,
    },
    Department {
        code: "emergency",
        zh: "急诊科",
        en: "Emergency",
        treats: &["急诊", "外伤", "高热", "昏迷", "中毒", "急性疼痛", "车祸", "出血不止"],
        treats_en: &[
            "emergency",
            "injury",
            "trauma",
            "high fever",
            "unconsciousness",
            "poisoning",
            "severe bleeding",
        ],
        location: ("急诊楼", "1", "急诊大厅"),
        phone: "0571-87236120",
        aliases: &["急诊科", "急诊"],
        diagnoses: &[("R07.4", "胸痛待查"), ("T14.1", "开放性外伤"), ("R50.9", "发热待查")],
        doctors: &["冯浩然", "吕振华"],
        share: 7,
        ages: (5, 90),
        inpatient: false,
    },
];

/// Where patients live: most in the hospital's own city, some from around it.
pub struct City {
    pub province: &'static str,
    pub city: &'static str,
    pub districts: &'static [&'static str],
    pub streets: &'static [&'static str],
    pub postal_prefix: &'static str,
    /// First four digits of generated identity numbers (see `ids::REGION_PROVINCES`).
    pub region: &'static str,
    pub weight: u32,
}

pub const CITIES: &[City] = &[
    City {
        province: "浙江省",
        city: "杭州市",
        districts: &["西湖区", "上城区", "拱墅区", "滨江区", "余杭区", "萧山区"],
        streets: &[
            "文一路",
            "学院路",
            "天目山路",
            "莫干山路",
            "庆春路",
            "凤起路",
            "江南大道",
            "文三路",
        ],
        postal_prefix: "310",
        region: "3801",
        weight: 70,
    },
    City {
        province: "浙江省",
        city: "绍兴市",
        districts: &["越城区", "柯桥区"],
        streets: &["解放路", "中兴路", "笛扬路"],
        postal_prefix: "312",
        region: "3806",
        weight: 10,
    },
    City {
        province: "浙江省",
        city: "湖州市",
        districts: &["吴兴区", "南浔区"],
        streets: &["人民路", "红旗路", "凤凰路"],
        postal_prefix: "313",
        region: "3805",
        weight: 8,
    },
    City {
        province: "浙江省",
        city: "嘉兴市",
        districts: &["南湖区", "秀洲区"],
        streets: &["中山路", "禾兴路", "勤俭路"],
        postal_prefix: "314",
        region: "3804",
        weight: 7,
    },
    City {
        province: "上海市",
        city: "上海市",
        districts: &["徐汇区", "闵行区", "浦东新区"],
        streets: &["漕溪北路", "虹梅路", "张杨路"],
        postal_prefix: "200",
        region: "3901",
        weight: 5,
    },
];

/// Occupation and industry, as the registration desk writes them.
pub const OCCUPATIONS: &[(&str, &str)] = &[
    ("教师", "教育"),
    ("软件工程师", "信息技术"),
    ("会计", "金融"),
    ("个体经营", "批发零售"),
    ("公务员", "公共管理"),
    ("工人", "制造业"),
    ("司机", "交通运输"),
    ("销售", "批发零售"),
    ("设计师", "文化创意"),
    ("厨师", "餐饮"),
    ("农民", "农业"),
    ("护工", "居民服务"),
    ("自由职业", "其他"),
];

/// Someone the demo acts as: a staff member of the centre or a system integrating with it.
#[derive(Debug, Clone)]
pub struct Staff {
    pub subject: String,
    pub role: Role,
    pub department: Option<String>,
}

impl Staff {
    pub fn new(subject: &str, role: Role) -> Self {
        Self {
            subject: subject.into(),
            role,
            department: None,
        }
    }
}

/// The HIS interface pushing patients and their timeline.
pub fn his() -> Staff {
    Staff::new("his-sync", Role::Integration)
}

/// Reads and waits: what the operator running the demo sees.
pub fn operator() -> Staff {
    Staff::new("demo-operator", Role::Admin)
}

/// Guide group (导医组): hotline, counter, records.
pub const GUIDES: &[&str] = &["guide-li", "guide-wang", "guide-zhao"];
/// Inspection group (督查组): follow-up calls, complaints, surveys.
pub const INSPECTORS: &[&str] = &["inspector-zhou", "inspector-chen", "inspector-huang"];
/// Public-opinion group (舆情组).
pub const ANALYST: &str = "analyst-wu";
pub const ANALYST_LEAD: &str = "analyst-sun";

/// The department head who investigates a case of `code`.
pub fn head_of(code: &str) -> String {
    format!("head-{code}")
}
