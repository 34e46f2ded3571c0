//! Small code sets shared by every table, stored as short string codes.

/// Declares a field-less enum with stable string codes and its Arrow column mapping.
macro_rules! code_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name { $( $(#[$vmeta])* #[serde(rename = $code)] $variant ),* }

        impl $name {
            /// All values, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The stable string code.
            pub fn code(&self) -> &'static str {
                match self { $( $name::$variant => $code ),* }
            }

            /// Parses a string code.
            pub fn from_code(s: &str) -> Option<Self> {
                match s { $( $code => Some($name::$variant), )* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }

        crate::code_column!($name);
    };
}

code_enum! {
    /// Sex as recorded (UKE 男女区分 1/2; HL7 M/F; FHIR male/female map onto these).
    pub enum Sex { Male = "M", Female = "F" }
}

impl Sex {
    /// The numeric code used in claims and checkups (1 male, 2 female).
    pub fn jp_code(&self) -> u8 {
        match self {
            Sex::Male => 1,
            Sex::Female => 2,
        }
    }
}

code_enum! {
    /// The kind of source a record came from.
    pub enum SourceKind {
        /// Electronic medical record export (SS-MIX2 standardized storage).
        Emr = "emr",
        /// Medical claims (レセプト電算).
        Claims = "claims",
        /// Specific health checkup (特定健診).
        Checkup = "checkup",
        /// Municipal resident record of a deceased person (住民票の除票).
        Death = "death",
        /// JP Core FHIR bundle.
        Fhir = "fhir",
    }
}

code_enum! {
    /// Public health insurance schemes.
    pub enum InsuranceKind {
        /// Municipal National Health Insurance (市町村国保), 6-digit insurer number.
        Kokuho = "kokuho",
        /// Japan Health Insurance Association (協会けんぽ), 法別 01.
        Kyokai = "kyokai",
        /// Society-managed health insurance (健保組合), 法別 06.
        Kumiai = "kumiai",
        /// Mutual aid associations (共済組合), 法別 31-34.
        Kyosai = "kyosai",
        /// Late-stage elderly medical care (後期高齢者医療), 法別 39, from age 75.
        Koki = "koki",
    }
}

code_enum! {
    /// Care setting of an encounter.
    pub enum Setting {
        /// Outpatient visit (外来).
        Outpatient = "outpatient",
        /// Inpatient stay (入院).
        Inpatient = "inpatient",
        /// Health checkup (健診).
        Checkup = "checkup",
    }
}

code_enum! {
    /// Code systems of clinical codes.
    pub enum CodeSystem {
        /// ICD-10 (2013).
        Icd10 = "icd10",
        /// 傷病名コード of the claims disease master (7 digits).
        ReceiptDisease = "receipt-disease",
        /// 医薬品コード of the claims drug master (9 digits, starts with 6).
        ReceiptDrug = "receipt-drug",
        /// 薬価基準収載医薬品コード (12 characters).
        YakkaCode = "yakka",
        /// 診療行為コード of the claims procedure master (9 digits, starts with 1).
        ReceiptProcedure = "receipt-procedure",
        /// JLAC10 laboratory code (17 characters).
        Jlac10 = "jlac10",
        /// A provider-local code.
        Local = "local",
    }
}

code_enum! {
    /// Outcome of a diagnosis (転帰区分 in claims: 1 continuing, 2 cured, 3 died, 4 stopped).
    pub enum DiagnosisOutcome {
        /// Continuing (継続).
        Continuing = "continuing",
        /// Cured (治ゆ).
        Cured = "cured",
        /// Died (死亡).
        Died = "died",
        /// Treatment stopped or transferred (中止・転医).
        Stopped = "stopped",
    }
}
