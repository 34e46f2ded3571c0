//! `tokumei serve`: the HTTPS server on an operator home (`tokumei_web::serve`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::operator::{self, open_home, report, AuthArgs, Failure};
use crate::{EXIT_FAILURE, EXIT_USAGE};

/// Serve the public pages and API over HTTPS until interrupted.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Operator home.
    #[arg(long)]
    home: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Certificate chain (PEM), with --key; without both, a self-signed certificate for localhost
    /// is made at each start and written to HOME/web/localhost.crt (its key stays in memory).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Public requests allowed per address per interval.
    #[arg(long, default_value_t = 600)]
    public_limit: u32,
    /// Seconds per interval of public requests (each closed interval is one audit entry).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    public_interval: u64,
    /// The address the public reaches this server at (https://…), printed as a QR code on each
    /// provider's notice poster; by default https://localhost:PORT.
    #[arg(long, value_parser = public_url)]
    public_url: Option<String>,
    #[command(flatten)]
    auth: AuthArgs,
}

/// An https URL of printable ASCII, without spaces, at most 200 characters.
fn public_url(s: &str) -> Result<String, String> {
    let ok = s.starts_with("https://")
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"'<>`".contains(&b));
    ok.then(|| s.to_string())
        .ok_or_else(|| "an https:// address of printable characters, at most 200".to_string())
}

pub(crate) fn run(a: ServeArgs) -> ExitCode {
    report(serve(a), |()| ())
}

fn serve(a: ServeArgs) -> Result<(), Failure> {
    let home = open_home(&a.home)?;
    // The data key opens the web credentials; with it, the operator's key signs the server's
    // audit entries.
    let key = operator::unlock(&home, &a.auth)?;
    let certificate = match (a.cert, a.key) {
        (Some(cert), Some(key)) => tokumei_web::Certificate::Files { cert, key },
        (None, None) => tokumei_web::Certificate::Generated,
        _ => return Err((EXIT_USAGE, "--cert and --key go together".into())),
    };
    let opts = tokumei_web::ServeOptions {
        listen: a.listen,
        certificate,
        public_limit: a.public_limit,
        public_interval: Duration::from_secs(a.public_interval),
        public_url: a.public_url,
    };
    tokumei_web::serve(home, key, opts, |ready| {
        println!("serving https://{}/ (Ctrl-C stops)", ready.address);
        if let Some(cert) = &ready.certificate {
            println!(
                "  a certificate for localhost was made for this run: {}",
                cert.display()
            );
        }
    })
    .map_err(|e| (EXIT_FAILURE, e.to_string()))
}
