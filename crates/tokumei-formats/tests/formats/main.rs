//! The source readers' and writers' integration tests, one binary: death records, JP Core FHIR,
//! 特定健診 CDA, SS-MIX2 and レセ電 claims (fixtures under `tests/fixtures`).

mod death;
mod fhir;
mod kenshin;
mod ssmix2;
mod uke;
