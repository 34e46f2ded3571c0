//! Passkeys on a real home, against a software authenticator written here from the WebAuthn
//! standard (ES256, "none" attestation): a signed-in user adds one; it signs them in without a
//! user name, only with user verification, once per challenge, never with a counter that went
//! back; a passkey row moved to another user is caught; failures count toward the lock-out the
//! password shares; removal is the owner's alone; every step is audited.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokumei_vault::access::Session;
use tokumei_vault::passkey::RelyingParty;
use tokumei_vault::webauth::{current_code, WebAuth, MAX_FAILURES};
use tokumei_vault::VaultError;

use crate::webauth::{enrolled, lab, Lab, WEB_PASSWORD};

const ORIGIN: &str = "https://tokumei.example:8443";
const NOW: i64 = 1_800_000_000;

/// A platform authenticator holding one discoverable ES256 credential.
struct Authenticator {
    key: SigningKey,
    cred_id: Vec<u8>,
    counter: u32,
    verifies_user: bool,
    handle: Vec<u8>,
}

/// Minimal CBOR (RFC 8949) for what an authenticator writes: a head, then the content.
fn cbor_head(major: u8, n: usize, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        _ => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
    }
}

fn cbor_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        cbor_head(0, i as usize, out);
    } else {
        cbor_head(1, (-1 - i) as usize, out);
    }
}

fn cbor_bytes(b: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, b.len(), out);
    out.extend(b);
}

fn cbor_text(t: &str, out: &mut Vec<u8>) {
    cbor_head(3, t.len(), out);
    out.extend(t.as_bytes());
}

impl Authenticator {
    fn new(seed: u8) -> Authenticator {
        Authenticator {
            key: SigningKey::from_slice(&[seed; 32]).expect("key"),
            cred_id: vec![seed; 16],
            counter: 0,
            verifies_user: true,
            handle: Vec::new(),
        }
    }

    /// The credential's public key as COSE (EC2, P-256, ES256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_sec1_bytes();
        let mut out = Vec::new();
        cbor_head(5, 5, &mut out);
        for (k, v) in [(1, 2), (3, -7), (-1, 1)] {
            cbor_int(k, &mut out);
            cbor_int(v, &mut out);
        }
        cbor_int(-2, &mut out);
        cbor_bytes(&point[1..33], &mut out);
        cbor_int(-3, &mut out);
        cbor_bytes(&point[33..65], &mut out);
        out
    }

    fn auth_data(&self, rp_id: &str, attested: bool) -> Vec<u8> {
        let mut flags = 0x01; // user present
        if self.verifies_user {
            flags |= 0x04;
        }
        if attested {
            flags |= 0x40;
        }
        let mut d = Sha256::digest(rp_id.as_bytes()).to_vec();
        d.push(flags);
        d.extend(self.counter.to_be_bytes());
        if attested {
            d.extend([0u8; 16]);
            d.extend((self.cred_id.len() as u16).to_be_bytes());
            d.extend(&self.cred_id);
            d.extend(self.cose_key());
        }
        d
    }

    fn client_data(kind: &str, options: &Value) -> String {
        json!({
            "type": kind,
            "challenge": options["publicKey"]["challenge"],
            "origin": ORIGIN,
            "crossOrigin": false,
        })
        .to_string()
    }

    /// `navigator.credentials.create`.
    fn create(&mut self, options: &Value) -> Vec<u8> {
        let o = &options["publicKey"];
        assert_eq!(o["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(o["authenticatorSelection"]["userVerification"], "required");
        let rp_id = o["rp"]["id"].as_str().expect("rp id");
        self.handle = B64
            .decode(o["user"]["id"].as_str().expect("user id"))
            .expect("b64");
        let mut att = Vec::new();
        cbor_head(5, 3, &mut att);
        cbor_text("fmt", &mut att);
        cbor_text("none", &mut att);
        cbor_text("attStmt", &mut att);
        cbor_head(5, 0, &mut att);
        cbor_text("authData", &mut att);
        cbor_bytes(&self.auth_data(rp_id, true), &mut att);
        let client = Self::client_data("webauthn.create", options);
        serde_json::to_vec(&json!({
            "id": B64.encode(&self.cred_id),
            "rawId": B64.encode(&self.cred_id),
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(att),
                "clientDataJSON": B64.encode(client),
            },
            "extensions": {},
        }))
        .expect("json")
    }

    /// `navigator.credentials.get`, for the relying party `rp_id`.
    fn get(&mut self, options: &Value, rp_id: &str) -> Vec<u8> {
        self.counter += 1;
        let data = self.auth_data(rp_id, false);
        let client = Self::client_data("webauthn.get", options);
        let mut signed = data.clone();
        signed.extend(Sha256::digest(client.as_bytes()));
        let sig: Signature = self.key.sign(&signed);
        serde_json::to_vec(&json!({
            "id": B64.encode(&self.cred_id),
            "rawId": B64.encode(&self.cred_id),
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(data),
                "clientDataJSON": B64.encode(client),
                "signature": B64.encode(sig.to_der().as_bytes()),
                "userHandle": B64.encode(&self.handle),
            },
            "extensions": {},
        }))
        .expect("json")
    }
}

fn rp() -> RelyingParty {
    RelyingParty::for_origin(ORIGIN).expect("relying party")
}

/// `chair` enrolled and signed in with the password; the store and chair's session.
fn chair(lab: &Lab) -> (WebAuth, Session) {
    let secret = enrolled(lab);
    let web = WebAuth::open(&lab.home).expect("store");
    let code = current_code(&secret, NOW).expect("code");
    let s = web
        .sign_in(&lab.key, "chair", WEB_PASSWORD, &code, NOW)
        .expect("signed in");
    (web, s)
}

/// Adds the authenticator's passkey for `s`.
fn add(web: &WebAuth, lab: &Lab, s: &Session, a: &mut Authenticator) -> Result<(), VaultError> {
    let (options, pending) = web.passkey_begin(&lab.key, s, &rp())?;
    let response = a.create(&options);
    web.passkey_finish(&lab.key, s, &rp(), pending, &response, "laptop")
        .map(|_| ())
}

fn sign_in(web: &WebAuth, lab: &Lab, a: &mut Authenticator) -> Result<Session, VaultError> {
    let (options, pending) = WebAuth::passkey_sign_in_begin(&rp())?;
    assert!(options["publicKey"]["allowCredentials"]
        .as_array()
        .is_none_or(Vec::is_empty));
    let response = a.get(&options, "tokumei.example");
    web.passkey_sign_in(&lab.key, &rp(), pending, &response, NOW)
}

fn outcomes(lab: &Lab, action: &str) -> Vec<String> {
    tokumei_audit::entries_of(&lab.home.audit_dir(), &[action], false)
        .expect("log")
        .into_iter()
        .map(|e| format!("{} {} {}", e.actor, e.object, e.outcome))
        .collect()
}

#[test]
fn a_passkey_signs_its_user_in_with_user_verification_once_per_challenge() {
    let lab = lab();
    let (web, chair) = chair(&lab);
    let mut a = Authenticator::new(7);
    add(&web, &lab, &chair, &mut a).expect("added");
    let listed = web.passkeys("chair").expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].label, "laptop");
    // The same authenticator again is excluded and refused.
    let again = add(&web, &lab, &chair, &mut a).expect_err("twice");
    assert!(matches!(again, VaultError::Refused(_)), "{again}");

    let s = sign_in(&web, &lab, &mut a).expect("signed in");
    assert_eq!((s.user.as_str(), s.role), ("chair", chair.role));
    assert!(web.passkeys("chair").expect("list")[0]
        .last_used_at
        .is_some());

    // An answer to one challenge does not answer another.
    let (options, _) = WebAuth::passkey_sign_in_begin(&rp()).expect("begin");
    let old = a.get(&options, "tokumei.example");
    let (_, pending) = WebAuth::passkey_sign_in_begin(&rp()).expect("begin");
    let replay = web.passkey_sign_in(&lab.key, &rp(), pending, &old, NOW);
    assert!(matches!(replay, Err(VaultError::Denied(_))), "{replay:?}");

    // Nor does an authenticator that did not verify its user, nor one for another site.
    a.verifies_user = false;
    assert!(matches!(
        sign_in(&web, &lab, &mut a),
        Err(VaultError::Denied(_))
    ));
    a.verifies_user = true;
    let (options, pending) = WebAuth::passkey_sign_in_begin(&rp()).expect("begin");
    let phished = a.get(&options, "tokumei.example.evil");
    let refused = web.passkey_sign_in(&lab.key, &rp(), pending, &phished, NOW);
    assert!(matches!(refused, Err(VaultError::Denied(_))), "{refused:?}");

    // A cloned authenticator (its counter behind the one seen) is refused.
    a.counter = 0;
    assert!(matches!(
        sign_in(&web, &lab, &mut a),
        Err(VaultError::Denied(_))
    ));

    let signins = outcomes(&lab, "web.signin");
    assert!(
        signins.iter().any(|o| o == "chair passkey ok"),
        "{signins:?}"
    );
    assert!(signins
        .iter()
        .any(|o| o == "chair passkey refused: wrong credentials"));
    assert!(outcomes(&lab, "web.passkey.add")
        .iter()
        .any(|o| o.starts_with("chair passkey ") && o.ends_with(" ok")));
}

#[test]
fn registration_needs_user_verification_and_a_label() {
    let lab = lab();
    let (web, chair) = chair(&lab);
    let mut a = Authenticator::new(8);
    a.verifies_user = false;
    assert!(matches!(
        add(&web, &lab, &chair, &mut a),
        Err(VaultError::Refused(_))
    ));
    a.verifies_user = true;
    let (options, pending) = web.passkey_begin(&lab.key, &chair, &rp()).expect("begin");
    let response = a.create(&options);
    for label in ["", "\u{7}bell", &"x".repeat(41)] {
        let (_, pending) = web.passkey_begin(&lab.key, &chair, &rp()).expect("begin");
        assert!(web
            .passkey_finish(&lab.key, &chair, &rp(), pending, &response, label)
            .is_err());
    }
    // A registration begun for one user is not finished by another.
    let other = web.passkey_finish(&lab.key, &lab.tech, &rp(), pending, &response, "x");
    assert!(matches!(other, Err(VaultError::Denied(_))), "{other:?}");
    assert!(web.passkeys("chair").expect("list").is_empty());
    assert!(outcomes(&lab, "web.passkey.add")
        .iter()
        .any(|o| o.ends_with("refused: the authenticator's response does not verify")));
}

#[test]
fn a_passkey_moved_to_another_user_is_caught_and_failures_lock_out() {
    let lab = lab();
    let (web, chair) = chair(&lab);
    let mut a = Authenticator::new(9);
    add(&web, &lab, &chair, &mut a).expect("added");
    // Someone who can write the home but not open it moves chair's passkey to tech2.
    let conn = rusqlite::Connection::open(lab.home.root.join("catalog/web.sqlite")).expect("db");
    conn.execute("UPDATE passkeys SET user = 'tech2'", [])
        .expect("move");
    let moved = sign_in(&web, &lab, &mut a);
    assert!(matches!(moved, Err(VaultError::Tampered(_))), "{moved:?}");
    conn.execute("UPDATE passkeys SET user = 'chair'", [])
        .expect("back");

    a.verifies_user = false;
    for _ in 0..MAX_FAILURES {
        assert!(sign_in(&web, &lab, &mut a).is_err());
    }
    a.verifies_user = true;
    let locked = sign_in(&web, &lab, &mut a).expect_err("locked out");
    assert!(locked.to_string().contains("try again later"), "{locked}");
    // The password is locked out too.
    let secret_free = web.sign_in(&lab.key, "chair", WEB_PASSWORD, "000000", NOW);
    assert!(secret_free.is_err());
}

#[test]
fn only_its_owner_removes_a_passkey_and_ip_addresses_have_none() {
    let lab = lab();
    let (web, chair) = chair(&lab);
    let mut a = Authenticator::new(10);
    add(&web, &lab, &chair, &mut a).expect("added");
    let id = web.passkeys("chair").expect("list")[0].id.clone();
    assert!(web.passkey_remove(&lab.tech2, &id).is_err());
    assert_eq!(web.passkeys("chair").expect("list").len(), 1);
    web.passkey_remove(&chair, &id).expect("removed");
    assert!(web.passkeys("chair").expect("list").is_empty());
    assert!(matches!(
        sign_in(&web, &lab, &mut a),
        Err(VaultError::Denied(_))
    ));
    assert!(outcomes(&lab, "web.passkey.remove")
        .iter()
        .any(|o| o == &format!("chair passkey {id} ok")));

    for origin in [
        "https://127.0.0.1:8443",
        "http://tokumei.example",
        "not a url",
    ] {
        assert!(RelyingParty::for_origin(origin).is_err(), "{origin}");
    }
    assert!(RelyingParty::for_origin("https://localhost:8443").is_ok());
}
