//! The web pages in headless Chromium (Debian's `chromium` and `chromium-driver`, installed by
//! `scripts/test-deps.sh`), driven over WebDriver, on the home `tokumei demo` leaves, served by
//! `tokumei serve`: a resident reads a provider's notice; a researcher submits an application
//! through the form; the committee opens a meeting, votes and decides; a technician builds the
//! release and the researcher downloads its encrypted package; a provider's user uploads a sealed
//! package that a technician then receives; an auditor verifies the log and proves its
//! consistency, then adds a passkey (Chromium's virtual authenticator, with user verification) and
//! signs in with it.
//! Each user has a browser of their own (each signs in once with the password and TOTP code of
//! `web-users.txt`). A screenshot of each page is kept in `target/browser-screenshots/`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A demo user's sign-in: password and TOTP secret.
struct Credentials {
    role: String,
    password: String,
    secret: String,
}

/// The server, the driver and a browser per user.
struct Walk {
    server: Child,
    driver: Child,
    base: String,
    webdriver: String,
    users: HashMap<String, Credentials>,
    browsers: HashMap<String, Client>,
    shots: PathBuf,
    taken: usize,
    log: PathBuf,
    scratch: tempfile::TempDir,
}

/// Kills a child process (the server, the driver) when the walk ends, however it ends.
impl Drop for Walk {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.driver.kill();
        let _ = self.server.wait();
        let _ = self.driver.wait();
    }
}

fn credentials(demo: &Path) -> HashMap<String, Credentials> {
    let text = std::fs::read_to_string(demo.join("web-users.txt")).expect("web users");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("user\t"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 4).then(|| {
                let c = Credentials {
                    role: f[1].to_string(),
                    password: f[2].to_string(),
                    secret: f[3].to_string(),
                };
                (f[0].to_string(), c)
            })
        })
        .collect()
}

/// `tokumei serve` on a free port of loopback; its address.
fn serve(demo: &Path) -> (Child, String) {
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("tokumei"))
        .args(["serve", "--listen", "127.0.0.1:0", "--home"])
        .arg(demo.join("home"))
        .arg("--passphrase-file")
        .arg(demo.join("passphrase.txt"))
        .env("TOKUMEI_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let address = lines
        .find_map(|l| {
            l.ok()?.strip_prefix("serving https://").map(|a| {
                a.trim_end_matches(|c| c != '/')
                    .trim_end_matches('/')
                    .to_string()
            })
        })
        .expect("the server says where it listens");
    std::thread::spawn(move || for _ in lines {});
    (
        child,
        format!(
            "https://localhost:{}",
            address.rsplit(':').next().unwrap_or("")
        ),
    )
}

/// ChromeDriver on a free port; its URL once it answers.
fn driver() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Process::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (scripts/test-deps.sh installs it)");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("http://127.0.0.1:{port}"))
}

impl Walk {
    fn start(demo: &Path) -> Walk {
        let (server, base) = serve(demo);
        let (driver, webdriver) = driver();
        let shots =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshots");
        Walk {
            server,
            driver,
            base,
            webdriver,
            users: credentials(demo),
            browsers: HashMap::new(),
            shots,
            taken: 0,
            log: demo.join("home/audit/entries.jsonl"),
            scratch: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A new headless browser (its own profile; the server's generated certificate accepted).
    async fn browser(&self, name: &str) -> Result<Client> {
        let profile = self.scratch.path().join(format!("profile-{name}"));
        let caps = serde_json::json!({
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--lang=en-US",
                    "--window-size=1280,1600",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let caps = caps.as_object().cloned().ok_or("capabilities")?;
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        Ok(ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.webdriver)
            .await?)
    }

    /// The browser of `user`, signed in with their password and TOTP code.
    async fn signed_in(&mut self, user: &str) -> Result<Client> {
        if let Some(c) = self.browsers.get(user) {
            return Ok(c.clone());
        }
        let c = self.browser(user).await?;
        let creds = self.users.get(user).ok_or("no such demo user")?;
        // A TOTP code is accepted once: if this user's code of this step was used already (the
        // demo's test signs the chair in too), the next step's code signs in.
        for attempt in 0..2 {
            if attempt > 0 {
                let wait = 31 - chrono::Utc::now().timestamp() % 30;
                tokio::time::sleep(Duration::from_secs(wait as u64)).await;
            }
            c.goto(&format!("{}/signin", self.base)).await?;
            let now = chrono::Utc::now().timestamp();
            let code =
                tokumei_vault::webauth::current_code(&creds.secret, now).ok_or("a TOTP code")?;
            type_into(&c, "user", user).await?;
            type_into(&c, "password", &creds.password).await?;
            type_into(&c, "code", &code).await?;
            submit(&c, "/signin").await?;
            if c.current_url().await?.path() == "/me" {
                break;
            }
        }
        let me = c.source().await?;
        assert!(me.contains(user), "{user} is signed in: {me}");
        self.browsers.insert(user.to_string(), c.clone());
        Ok(c)
    }

    async fn shot(&mut self, c: &Client, name: &str) -> Result<()> {
        self.taken += 1;
        let png = c.screenshot().await?;
        std::fs::write(
            self.shots.join(format!("{:02}-{name}.png", self.taken)),
            png,
        )?;
        Ok(())
    }

    async fn open(&mut self, user: &str, path: &str, shot: &str) -> Result<(Client, String)> {
        let c = self.signed_in(user).await?;
        c.goto(&format!("{}{path}", self.base)).await?;
        self.shot(&c, shot).await?;
        let page = c.source().await?;
        assert!(!page.contains('⟦'), "{path}: a message without text");
        Ok((c, page))
    }
}

async fn type_into(c: &Client, name: &str, text: &str) -> Result<()> {
    let field = c.find(Locator::Css(&format!("[name='{name}']"))).await?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

/// Sets a field's value directly (date inputs take typed text in the browser's locale order).
async fn set_value(c: &Client, name: &str, value: &str) -> Result<()> {
    let script =
        "document.querySelector(\"[name='\" + arguments[0] + \"']\").value = arguments[1];";
    c.execute(script, vec![name.into(), value.into()]).await?;
    Ok(())
}

async fn click(c: &Client, css: &str) -> Result<()> {
    c.find(Locator::Css(css)).await?.click().await?;
    Ok(())
}

/// Submits the form posting to `action` with its button.
async fn submit(c: &Client, action: &str) -> Result<()> {
    navigating(c, &format!("form[action='{action}'] button[type='submit']")).await
}

/// Clicks what submits a form, and waits for the next page: the old page's root goes stale.
async fn navigating(c: &Client, css: &str) -> Result<()> {
    let old = c.find(Locator::Css("html")).await?;
    click(c, css).await?;
    for _ in 0..1200 {
        if old.tag_name().await.is_err() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("no page after clicking {css}").into())
}

/// Reloads `url` until its page holds one of `texts` (a background job's end), up to `limit`.
async fn until(c: &Client, url: &str, texts: &[&str], limit: Duration) -> Result<String> {
    let start = std::time::Instant::now();
    loop {
        c.goto(url).await?;
        let page = c.source().await?;
        if texts.iter().any(|t| page.contains(t)) || start.elapsed() > limit {
            return Ok(page);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Walks the pages of every role on the demo's home.
pub fn walk(demo: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut w = Walk::start(demo);
    rt.block_on(async {
        resident(&mut w).await?;
        let id = researcher_applies(&mut w, demo).await?;
        committee_decides(&mut w, &id).await?;
        built_and_downloaded(&mut w, &id).await?;
        provider_uploads(&mut w, demo).await?;
        clerical_review(&mut w).await?;
        two_person_export(&mut w, demo).await?;
        auditor_verifies(&mut w).await?;
        passkey(&mut w).await?;
        for (_, c) in w.browsers.drain() {
            c.close().await?;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
    .expect("the walk through the pages");
}

async fn resident(w: &mut Walk) -> Result<()> {
    let c = w.browser("resident").await?;
    c.goto(&format!("{}/notices/H01", w.base)).await?;
    w.shot(&c, "notice").await?;
    let page = c.source().await?;
    assert!(
        page.contains("How to ask") || page.contains("stop"),
        "{page}"
    );
    c.goto(&format!("{}/notices/H01/poster", w.base)).await?;
    w.shot(&c, "poster").await?;
    let page = c.source().await?;
    assert!(
        page.contains("<svg") && page.contains(&format!("{}/notices/H01", w.base)),
        "{page}"
    );
    c.goto(&format!("{}/register", w.base)).await?;
    w.shot(&c, "register").await?;
    c.close().await?;
    Ok(())
}

async fn researcher_applies(w: &mut Walk, demo: &Path) -> Result<String> {
    let identity = std::fs::read_to_string(demo.join("recipient.identity"))?;
    let identity: age::x25519::Identity = identity
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .ok_or("identity")?
        .parse()
        .map_err(|e: &str| e.to_string())?;
    let (c, _) = w
        .open("researcher", "/applications/new", "application-form")
        .await?;
    type_into(
        &c,
        "title",
        "若年者の受診 / Care of the young (browser test)",
    )
    .await?;
    type_into(&c, "purpose", "Describe the care of people under 40").await?;
    for (name, v) in [
        ("period_from", "2021-04-01"),
        ("period_to", "2024-03-31"),
        ("contract_expiry", "2099-03-31"),
    ] {
        set_value(&c, name, v).await?;
    }
    type_into(&c, "recipient_key", &identity.to_public().to_string()).await?;
    type_into(&c, "security_plan", "Isolated workstation").await?;
    type_into(&c, "organisation", "架空大学").await?;
    type_into(&c, "responsible_researcher", "研究 責任者").await?;
    // Persons younger than the demo's release holds (40 and over): a release of other persons,
    // which the cross-release test lets through.
    type_into(&c, "age_max", "39").await?;
    for item in ["persons.sex", "diagnoses.icd10", "diagnoses.date"] {
        click(&c, &format!("input[name='item'][value='{item}']")).await?;
    }
    submit(&c, "/applications").await?;
    let url = c.current_url().await?;
    let id = url.path().rsplit('/').next().unwrap_or("").to_string();
    assert!(id.starts_with("A-"), "submitted: {url}");
    w.shot(&c, "application").await?;
    Ok(id)
}

async fn committee_decides(w: &mut Walk, id: &str) -> Result<()> {
    let (c, _) = w.open("chair", "/committee", "committee").await?;
    set_value(
        &c,
        "date",
        &chrono::Utc::now().format("%Y-%m-%d").to_string(),
    )
    .await?;
    for m in ["chair", "external", "member"] {
        click(&c, &format!("input[name='present'][value='{m}']")).await?;
    }
    submit(&c, "/committee").await?;
    let docket = c.current_url().await?.path().to_string();
    assert!(docket.starts_with("/committee/M-"), "{docket}");
    for member in ["chair", "external", "member"] {
        let (c, page) = w.open(member, &docket, "docket").await?;
        assert!(page.contains(id), "{page}");
        let vote = format!("{docket}/vote");
        let form = format!("form[action='{vote}']:has(input[value='{id}'])");
        click(&c, &format!("{form} input[name='vote'][value='approve']")).await?;
        navigating(&c, &format!("{form} button[type='submit']")).await?;
    }
    let (c, _) = w.open("chair", &docket, "docket-voted").await?;
    let form = format!("form[action='{docket}/decide']:has(input[value='{id}'])");
    // (:has cannot nest: the section of the application holds the details.)
    click(
        &c,
        &format!("section:has(input[value='{id}']) details summary"),
    )
    .await?;
    c.find(Locator::Css(&format!("{form} textarea[name='reasons']")))
        .await?
        .send_keys("Purpose and items are proportionate")
        .await?;
    navigating(&c, &format!("{form} button[type='submit']")).await?;
    w.shot(&c, "decided").await?;
    let page = c.source().await?;
    assert!(page.contains("Approve"), "{page}");
    Ok(())
}

async fn built_and_downloaded(w: &mut Walk, id: &str) -> Result<()> {
    let technician = first_technician(w);
    let path = format!("/applications/{id}");
    let (c, _) = w.open(&technician, &path, "to-build").await?;
    submit(&c, &format!("{path}/build")).await?;
    let url = format!("{}{path}", w.base);
    let ends = ["/package\"", "The build failed"];
    let page = until(&c, &url, &ends, Duration::from_secs(600)).await?;
    w.shot(&c, "built").await?;
    assert!(
        page.contains(&format!("{path}/package")),
        "the build ends with a package: {page}"
    );
    // The researcher downloads it in their browser: the sealed package, whole.
    let (c, page) = w.open("researcher", &path, "download").await?;
    assert!(page.contains("Download"), "{page}");
    let script = "const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => {
            done([b.byteLength, new TextDecoder().decode(new Uint8Array(b).slice(0, 21))]);
        });";
    let got = c
        .execute_async(script, vec![format!("{path}/package").into()])
        .await?;
    assert_eq!(got[1], "age-encryption.org/v1", "{got}");
    assert!(got[0].as_u64() > Some(1000), "{got}");
    Ok(())
}

/// The home's first technician (the first line of `web-users.txt` of that role, not `tech2`).
fn first_technician(w: &Walk) -> String {
    w.users
        .iter()
        .find(|(name, c)| c.role == "technician" && name.as_str() != "tech2")
        .map(|(name, _)| name.clone())
        .expect("the first technician")
}

async fn provider_uploads(w: &mut Walk, demo: &Path) -> Result<()> {
    let extract = w.scratch.path().join("extract");
    std::fs::create_dir_all(extract.join("death"))?;
    std::fs::write(
        extract.join("death/deaths.csv"),
        "municipality_code,record_kind,name_kanji,name_kana,birth_date,sex,last_address,postal_code,\
         removal_reason,removal_date,death_date,notified_date,resident_number\r\n\
         022012,除票,試験　花子,シケン　ハナコ,1940-04-12,2,青森県青森市新町１丁目２－３,030-0801,死亡,\
         2024-02-03,2024-02-03,2024-02-05,0000000001\r\n",
    )?;
    let package = w.scratch.path().join("H01-web.tkm");
    let recipient = std::fs::read_to_string(demo.join("home/operator.recipient"))?;
    let ok = Process::new(assert_cmd::cargo::cargo_bin("tokumei"))
        .args(["package", "--to", recipient.trim(), "--provider-key"])
        .arg(demo.join("providers/H01.key"))
        .arg("--in")
        .arg(&extract)
        .arg("--out")
        .arg(&package)
        .status()?;
    assert!(ok.success());
    let (c, _) = w.open("h01-staff", "/uploads", "uploads").await?;
    c.find(Locator::Css("#file"))
        .await?
        .send_keys(&package.display().to_string())
        .await?;
    click(&c, "#upload button[type='submit']").await?;
    let size = std::fs::metadata(&package)?.len();
    let done = format!("data-offset=\"{size}\"");
    // The page's script sends the file and reloads the page when it is whole: wait, without
    // navigating away from it.
    let mut page = String::new();
    for _ in 0..1200 {
        page = c.source().await?;
        if page.contains(&done) || page.contains("✗") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.shot(&c, "uploaded").await?;
    assert!(page.contains(&done), "the upload completes: {page}");
    let technician = first_technician(w);
    let (c, _) = w.open(&technician, "/uploads", "to-receive").await?;
    navigating(&c, "form[action$='/receive'] button[type='submit']").await?;
    w.shot(&c, "received").await?;
    let page = c.source().await?;
    assert!(
        page.contains("Received") && page.contains("death/deaths.csv"),
        "{page}"
    );
    assert!(!page.contains("シケン"), "no record's value is shown");
    Ok(())
}

/// The provider's receipts with their quarantine counted; the technician's clerical review, side
/// by side, one pair decided.
async fn clerical_review(w: &mut Walk) -> Result<()> {
    let (_, page) = w.open("h01-staff", "/receipts", "receipts").await?;
    assert!(
        page.contains("<td>H01</td>") && page.contains("/audit/export?provider=H01"),
        "{page}"
    );
    let technician = first_technician(w);
    let (c, page) = w.open(&technician, "/link", "link").await?;
    assert!(page.contains("Run the linkage"), "{page}");
    let pending = |p: &str| p.matches("action=\"/link/review/").count();
    let before = pending(&page);
    if before > 0 {
        navigating(&c, "form[action^='/link/review/'] button[type='submit']").await?;
        w.shot(&c, "link-decided").await?;
        // Fifty pairs are shown at once: one fewer only when fewer were pending.
        if before < 100 {
            let after = pending(&c.source().await?);
            assert_eq!(after, before - 2, "one pair (two buttons) fewer");
        }
    }
    Ok(())
}

/// An export of a package's quarantine: requested by the first technician, approved by the
/// second, run by the first, its sealed file offered to them.
async fn two_person_export(w: &mut Walk, demo: &Path) -> Result<()> {
    let recipient = std::fs::read_to_string(demo.join("home/operator.recipient"))?;
    let technician = first_technician(w);
    let (c, _) = w.open(&technician, "/exports", "exports").await?;
    type_into(&c, "recipient", recipient.trim()).await?;
    type_into(
        &c,
        "purpose",
        "return the unreadable records to the provider",
    )
    .await?;
    submit(&c, "/exports").await?;
    let page = c.source().await?;
    let id = page
        .split("<td>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .ok_or("the request's number")?
        .to_string();
    assert!(
        !page.contains(&format!("/exports/{id}/approve")),
        "not for the requester"
    );
    let (c2, _) = w.open("tech2", "/exports", "exports-to-approve").await?;
    submit(&c2, &format!("/exports/{id}/approve")).await?;
    let (c, _) = w.open(&technician, "/exports", "exports-approved").await?;
    submit(&c, &format!("/exports/{id}/run")).await?;
    w.shot(&c, "exports-run").await?;
    let page = c.source().await?;
    assert!(page.contains(&format!("/exports/{id}/file")), "{page}");
    Ok(())
}

async fn auditor_verifies(w: &mut Walk) -> Result<()> {
    let (_, page) = w.open("auditor", "/audit", "audit").await?;
    assert!(page.contains("The whole log verifies"), "{page}");
    let (c, page) = w
        .open("auditor", "/audit/consistency", "consistency")
        .await?;
    let head = page
        .split("<pre><code>")
        .nth(1)
        .and_then(|r| r.split("</code></pre>").next())
        .ok_or("a head")?
        .replace("&quot;", "\"");
    c.goto(&format!("{}/me", w.base)).await?;
    c.goto(&format!("{}/audit/consistency", w.base)).await?;
    type_into(&c, "head", &head).await?;
    submit(&c, "/audit/consistency").await?;
    w.shot(&c, "consistent").await?;
    let page = c.source().await?;
    let log = std::fs::read_to_string(&w.log).unwrap_or_default();
    let last: Vec<&str> = log.lines().rev().take(12).collect();
    assert!(
        page.contains("extends the earlier one"),
        "{page}\nthe log's last lines:\n{}",
        last.join("\n")
    );
    Ok(())
}

/// Chromium's virtual authenticator (WebDriver's WebAuthn extension): a platform authenticator
/// holding discoverable credentials, verifying its user.
#[derive(Debug)]
struct VirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for VirtualAuthenticator {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> std::result::Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/authenticator",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Waits until the browser is at `path` (a script navigates there).
async fn arrives(c: &Client, path: &str) -> Result<()> {
    for _ in 0..400 {
        if c.current_url().await?.path() == path {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = passkey_status(c).await;
    Err(format!("not at {path}: {status}").into())
}

/// Waits, without reloading, until the page holds `text` (a script loads the next page).
async fn shows(c: &Client, text: &str) -> Result<String> {
    for _ in 0..400 {
        let page = c.source().await?;
        if page.contains(text) {
            return Ok(page);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = passkey_status(c).await;
    Err(format!("the page never showed {text}: {status}").into())
}

/// What the passkey script reported, if it failed.
async fn passkey_status(c: &Client) -> String {
    match c.find(Locator::Css("#passkey-status")).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn passkey(w: &mut Walk) -> Result<()> {
    let c = w.signed_in("auditor").await?;
    c.issue_cmd(VirtualAuthenticator).await?;
    c.goto(&format!("{}/passkeys", w.base)).await?;
    type_into(&c, "label", "walk <laptop>").await?;
    click(&c, "#passkey-add button[type='submit']").await?;
    // The page's script registers the passkey and then loads the list itself: reloading here
    // would abort it mid-way.
    let page = shows(&c, "walk &lt;laptop&gt;").await?;
    w.shot(&c, "passkey-added").await?;
    assert!(page.contains("walk &lt;laptop&gt;"), "{page}");
    c.goto(&format!("{}/me", w.base)).await?;
    submit(&c, "/signout").await?;
    c.goto(&format!("{}/signin", w.base)).await?;
    click(&c, "#passkey-signin").await?;
    arrives(&c, "/me").await?;
    w.shot(&c, "passkey-signed-in").await?;
    assert!(c.source().await?.contains("auditor"));
    let log = std::fs::read_to_string(&w.log)?;
    assert!(
        log.lines().any(|l| l.contains("\"auditor\"")
            && l.contains("\"web.signin\"")
            && l.contains("\"passkey\"")
            && l.contains("\"ok\"")),
        "the passkey's sign-in is audited"
    );
    c.goto(&format!("{}/passkeys", w.base)).await?;
    submit(&c, "/passkeys/remove").await?;
    let page = c.source().await?;
    assert!(page.contains("No passkey is registered"), "{page}");
    Ok(())
}
