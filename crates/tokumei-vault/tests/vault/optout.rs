//! The opt-out registry: requests recorded as blind indexes only, matched whatever the width of the
//! identifiers, by date.

use tokumei_vault::home::init;
use tokumei_vault::optout::{parse_csv, IndexKey, Request, Requester, Subject};

const PASS: &str = "correct horse battery staple";

#[test]
fn requests_match_by_blind_index_and_never_store_identifiers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = init(&dir.path().join("home"), PASS, Some(10))
        .expect("init")
        .home;
    let key = IndexKey::derive(&home.unlock_data_key(PASS).expect("unlock"));
    let catalog = home.catalog().expect("catalog");
    let by_patient = Subject::Patient {
        provider_id: "H01".into(),
        local_patient_id: "12345678".into(),
    };
    let insured = Subject::Insured {
        insurer_number: "06139992".into(),
        symbol: Some("１２３４".into()),
        number: "５６７８".into(),
        branch: Some("01".into()),
    };
    for (s, who) in [
        (&by_patient, Requester::SelfPatient),
        (&insured, Requester::Bereaved),
    ] {
        catalog
            .add_optout(
                &key,
                &Request {
                    subject: s.clone(),
                    requester: who,
                    received_on: "2025-03-01".into(),
                    confirmed_on: Some("2025-03-05".into()),
                },
            )
            .expect("add");
    }
    assert_eq!(catalog.optouts().expect("n"), 2);
    assert!(catalog.opted_out(&key, &by_patient, None).expect("q"));
    // Width variants of the same identifiers match.
    let half = Subject::Insured {
        insurer_number: "06139992".into(),
        symbol: Some("1234".into()),
        number: "5678".into(),
        branch: Some("01".into()),
    };
    assert!(catalog.opted_out(&key, &half, None).expect("q"));
    // Not before the request was received; not another patient or provider.
    assert!(!catalog
        .opted_out(&key, &half, Some("2025-02-28"))
        .expect("q"));
    assert!(catalog
        .opted_out(&key, &half, Some("2025-03-01"))
        .expect("q"));
    let other = Subject::Patient {
        provider_id: "H02".into(),
        local_patient_id: "12345678".into(),
    };
    assert!(!catalog.opted_out(&key, &other, None).expect("q"));
    // Another home's key gives other indexes.
    let other_home = init(&dir.path().join("other"), PASS, Some(10))
        .expect("init")
        .home;
    let other_key = IndexKey::derive(&other_home.unlock_data_key(PASS).expect("unlock"));
    assert_ne!(other_key.index(&by_patient), key.index(&by_patient));
    // The identifiers are nowhere in the catalog files.
    drop(catalog);
    for entry in std::fs::read_dir(home.root.join("catalog")).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        for needle in ["12345678", "06139992", "５６７８"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} stored in plain text"
            );
        }
    }
}

#[test]
fn an_import_file_is_read_and_bad_rows_are_named_by_line() {
    let text = "provider_id,local_patient_id,insurer_number,symbol,number,branch,requester,received_on,confirmed_on\n\
                H01,0001,,,,,self,2025-01-10,2025-01-12\n\
                ,,022012,05,1234567,00,bereaved,2025-02-01,\n";
    let rs = parse_csv(text).expect("parse");
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[1].requester, Requester::Bereaved);
    assert!(matches!(rs[1].subject, Subject::Insured { .. }));
    let bad = format!("{text},,,,,,someone,2025-02-01,\n");
    let e = parse_csv(&bad).expect_err("bad requester");
    assert!(e.to_string().contains("line 4"), "{e}");
    let bad = format!("{text}H02,,,,,,self,2025-02-01,\n");
    assert!(parse_csv(&bad)
        .expect_err("no subject")
        .to_string()
        .contains("line 4"));
}
