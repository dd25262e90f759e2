//! The channels against real servers on 127.0.0.1, started here: an SMTP server and an HTTP server
//! that speak just enough of their protocols, record what they receive, and answer as told. Their
//! refusals quote the address or number back, as real ones do, so the tests can check that no
//! error carries it on.

use chrono::DateTime;
use landsby_domain::Language;
use landsby_notification::channels::{
    ChannelConfigError, EmailSender, Outgoing, SendError, Sender, SmsSender, WebhookSender,
    install_crypto, sign, verify,
};
use landsby_platform::Secret;
use landsby_platform::config::{SmsConfig, SmtpConfig, SmtpTls, WebhookConfig};
pub(crate) use landsby_testkit::http::{HttpServer, Request, http_server};
use std::net::SocketAddr;

use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const ADDRESS: &str = "ola.nordmann@example.no";
const NUMBER: &str = "91234567";
const SUBJECT: &str = "Nytt samvær på lørdag – Åse";
const BODY: &str = "Hei Åse!\nSamværet er flyttet til lørdag kl. 12.00 på Blåbærveien 7.\n\nHilsen barnevernet i Ås, Øst-Sørli";
const KEY: &str = "0190f0e2-7c1a-7d3e-9a4b-5c6d7e8f9012-1";
const AGENCY: &str = "0301";
const SECRET: &str = "whsec_4f9a1c2e7b";
const TIMEOUT: Duration = Duration::from_secs(5);

fn outgoing(to: &str) -> Outgoing<'_> {
    Outgoing {
        notification_id: uuid::Uuid::from_u128(0x0190_f0e2_7c1a_7d3e_9a4b_5c6d_7e8f_9012),
        idempotency_key: KEY,
        agency: AGENCY,
        case_id: uuid::Uuid::from_u128(0x0190_f0e2_0000_7000_8000_0000_0000_0042),
        kind: "visit_scheduled",
        language: Language::Nn,
        subject: SUBJECT,
        body: BODY,
        to,
    }
}

/// An error must not carry the address, the number or any of the message, in any form.
fn assert_no_personal_data(error: &SendError) {
    for text in [error.to_string(), format!("{error:?}")] {
        for personal in [
            ADDRESS,
            "ola.nordmann",
            NUMBER,
            "4791234567",
            "Åse",
            "Blåbærveien",
            "samvær",
        ] {
            assert!(
                !text.contains(personal),
                "{text:?} carries personal data {personal:?}"
            );
        }
    }
}

fn transient(reason: &str) -> SendError {
    SendError::Transient(reason.to_owned())
}

fn permanent(reason: &str) -> SendError {
    SendError::Permanent(reason.to_owned())
}

/// A port on loopback that nothing listens on.
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

// ----- an SMTP server -----

/// One message as the SMTP server received it.
#[derive(Debug, Default)]
pub(crate) struct Mail {
    ehlo: String,
    auth: Option<String>,
    from: String,
    pub(crate) to: Vec<String>,
    /// Everything between DATA and the final dot, dot-stuffing undone.
    data: String,
}

impl Mail {
    /// The header `name`, unfolded, as written.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.data.split_once("\r\n\r\n")?;
        let mut unfolded: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                unfolded.last_mut()?.push_str(line);
            } else {
                unfolded.push(line.to_owned());
            }
        }
        unfolded.into_iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }
}

/// How the SMTP server answers `RCPT TO`.
#[derive(Clone, Copy)]
pub(crate) enum Smtp {
    /// Takes every message.
    Accept,
    /// Refuses the recipient with this code, quoting the address back; 421 also closes.
    Refuse(u16),
    /// Accepts connections and never says a word.
    Silent,
}

pub(crate) struct SmtpServer {
    pub(crate) addr: SocketAddr,
    pub(crate) mails: mpsc::UnboundedReceiver<Mail>,
}

pub(crate) async fn smtp_server(behaviour: Smtp) -> SmtpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mails) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = smtp_session(stream, behaviour, tx).await;
            });
        }
    });
    SmtpServer { addr, mails }
}

async fn smtp_session(
    stream: TcpStream,
    behaviour: Smtp,
    mails: mpsc::UnboundedSender<Mail>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    if let Smtp::Silent = behaviour {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    }
    write
        .write_all(b"220 mx.example.no ESMTP landsby-test\r\n")
        .await?;
    let mut mail = Mail::default();
    loop {
        let Some(line) = read_line(&mut read).await? else {
            return Ok(());
        };
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO ") {
            mail.ehlo = line[5..].to_owned();
            "250-mx.example.no\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n"
                .to_owned()
        } else if upper.starts_with("HELO ") {
            mail.ehlo = line[5..].to_owned();
            "250 mx.example.no\r\n".to_owned()
        } else if upper.starts_with("AUTH PLAIN ") {
            mail.auth = Some(line[11..].to_owned());
            "235 2.7.0 Authentication successful\r\n".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_owned();
            "250 2.1.0 Ok\r\n".to_owned()
        } else if upper.starts_with("RCPT TO:") {
            let recipient = line[8..].trim().to_owned();
            match behaviour {
                Smtp::Refuse(421) => {
                    let reply = format!("421 4.7.0 {recipient}: try again later, closing\r\n");
                    write.write_all(reply.as_bytes()).await?;
                    return Ok(());
                }
                Smtp::Refuse(code) => {
                    format!("{code} 5.1.1 {recipient}: Recipient address rejected\r\n")
                }
                Smtp::Accept | Smtp::Silent => {
                    mail.to.push(recipient);
                    "250 2.1.5 Ok\r\n".to_owned()
                }
            }
        } else if upper == "DATA" {
            if mail.to.is_empty() {
                "554 5.5.1 No valid recipients\r\n".to_owned()
            } else {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    let Some(line) = read_line(&mut read).await? else {
                        return Ok(());
                    };
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    data.push_str("\r\n");
                }
                mail.data = data;
                let _ = mails.send(std::mem::take(&mut mail));
                "250 2.0.0 Ok: queued\r\n".to_owned()
            }
        } else if upper == "RSET" {
            mail = Mail::default();
            "250 2.0.0 Ok\r\n".to_owned()
        } else if upper == "NOOP" {
            "250 2.0.0 Ok\r\n".to_owned()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Command not recognized\r\n".to_owned()
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// One CRLF-terminated line without its ending; `None` at the end of the stream.
async fn read_line<R: AsyncBufReadExt + Unpin>(read: &mut R) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    if read.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&buf);
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

pub(crate) fn smtp_config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: String::new(),
        password: Secret::default(),
        from: "Barnevernet <landsby@example.no>".into(),
    }
}

pub(crate) async fn next_mail(server: &mut SmtpServer) -> Mail {
    tokio::time::timeout(Duration::from_secs(5), server.mails.recv())
        .await
        .expect("the SMTP server got no message")
        .unwrap()
}

/// Standard base64, padded.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).expect("not base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable (RFC 2045), soft line breaks removed.
fn quoted_printable_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
            } else {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).expect("bad escape"));
                i += 3;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// A header value with RFC 2047 `=?utf-8?b?…?=` words decoded.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut previous_encoded = false;
    for (n, token) in value.split_whitespace().enumerate() {
        let encoded = token
            .strip_prefix("=?utf-8?b?")
            .and_then(|t| t.strip_suffix("?="));
        if n > 0 && !(previous_encoded && encoded.is_some()) {
            out.push(' ');
        }
        match encoded {
            Some(word) => out.push_str(&String::from_utf8(base64_decode(word)).unwrap()),
            None => out.push_str(token),
        }
        previous_encoded = encoded.is_some();
    }
    out
}

// ----- an HTTP server: landsby_testkit::http -----

/// A status from the request path's last segment (`/status/503`), with a body that quotes the
/// request back, as some gateways do.
fn status_from_path(request: &Request) -> Option<(u16, String)> {
    let status = request.path.rsplit('/').next()?.parse().ok()?;
    let echo = String::from_utf8_lossy(&request.body).into_owned();
    Some((
        status,
        serde_json::json!({ "error": "refused", "request": echo }).to_string(),
    ))
}

fn sms_config(url: String) -> SmsConfig {
    SmsConfig {
        url,
        token: Secret::new("sms-token-9f8e7d".into()),
        sender: "Barnevernet".into(),
    }
}

fn webhook_config(url: String, secret: &str) -> WebhookConfig {
    WebhookConfig {
        url,
        secret: Secret::new(secret.into()),
    }
}

// ----- the shared parts -----

#[test]
fn outgoing_debug_shows_only_id_and_kind() {
    let message = outgoing(ADDRESS);
    let debug = format!("{message:?}");
    assert!(
        debug.contains("0190f0e2-7c1a-7d3e-9a4b-5c6d7e8f9012"),
        "{debug}"
    );
    assert!(debug.contains("visit_scheduled"), "{debug}");
    for personal in [ADDRESS, SUBJECT, "Blåbærveien", KEY, AGENCY, "00000042"] {
        assert!(!debug.contains(personal), "{debug} shows {personal:?}");
    }
}

#[test]
fn install_crypto_twice_is_fine() {
    install_crypto();
    install_crypto();
}

// ----- e-mail -----

#[tokio::test]
async fn email_is_delivered_as_utf8_plain_text_with_the_idempotency_key() {
    let mut server = smtp_server(Smtp::Accept).await;
    let sender = EmailSender::new(&smtp_config(server.addr.port()), TIMEOUT).unwrap();

    sender.send(&outgoing(ADDRESS)).await.unwrap();

    let mail = next_mail(&mut server).await;
    assert!(!mail.ehlo.is_empty());
    assert_eq!(mail.auth, None, "no username: no login");
    assert!(
        mail.from.starts_with("<landsby@example.no>"),
        "{}",
        mail.from
    );
    assert_eq!(mail.to, [format!("<{ADDRESS}>")]);
    assert_eq!(decode_words(&mail.header("Subject").unwrap()), SUBJECT);
    assert!(
        mail.header("From")
            .unwrap()
            .contains("<landsby@example.no>")
    );
    assert_eq!(mail.header("To").unwrap(), ADDRESS);
    assert_eq!(
        mail.header("Message-ID").unwrap(),
        format!("<{KEY}@landsby>")
    );
    assert_eq!(mail.header("X-Landsby-Idempotency-Key").unwrap(), KEY);
    assert_eq!(mail.header("Content-Language").unwrap(), "nn");
    assert_eq!(
        mail.header("Content-Type").unwrap().to_ascii_lowercase(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        mail.header("Content-Transfer-Encoding").unwrap(),
        "quoted-printable"
    );
    assert!(mail.header("Date").is_some());
    assert!(
        mail.data.is_ascii(),
        "8-bit text went out unencoded: {}",
        mail.data
    );
    let body = String::from_utf8(quoted_printable_decode(mail.body())).unwrap();
    assert_eq!(body.replace("\r\n", "\n").trim_end(), BODY);
    assert!(body.contains("æ") && body.contains("ø") && body.contains("å") && body.contains("Å"));
}

#[tokio::test]
async fn email_logs_in_when_a_username_is_set() {
    let mut server = smtp_server(Smtp::Accept).await;
    let mut config = smtp_config(server.addr.port());
    config.username = "landsby".into();
    config.password = Secret::new("smtp-passord".into());
    let sender = EmailSender::new(&config, TIMEOUT).unwrap();

    sender.send(&outgoing(ADDRESS)).await.unwrap();

    let mail = next_mail(&mut server).await;
    let auth = base64_decode(&mail.auth.expect("no AUTH PLAIN"));
    assert_eq!(auth, b"\0landsby\0smtp-passord");
}

#[tokio::test]
async fn email_refused_with_550_is_permanent() {
    let server = smtp_server(Smtp::Refuse(550)).await;
    let sender = EmailSender::new(&smtp_config(server.addr.port()), TIMEOUT).unwrap();

    let error = sender.send(&outgoing(ADDRESS)).await.unwrap_err();

    assert_eq!(error, permanent("smtp 550"));
    assert!(error.is_permanent());
    assert_no_personal_data(&error);
}

#[tokio::test]
async fn email_refused_with_421_is_transient() {
    let server = smtp_server(Smtp::Refuse(421)).await;
    let sender = EmailSender::new(&smtp_config(server.addr.port()), TIMEOUT).unwrap();

    let error = sender.send(&outgoing(ADDRESS)).await.unwrap_err();

    assert_eq!(error, transient("smtp 421"));
    assert!(!error.is_permanent());
    assert_no_personal_data(&error);
}

#[tokio::test]
async fn email_with_nothing_listening_is_transient() {
    let sender = EmailSender::new(&smtp_config(closed_port().await), TIMEOUT).unwrap();

    let error = sender.send(&outgoing(ADDRESS)).await.unwrap_err();

    assert_eq!(error, transient("smtp connection refused"));
    assert_no_personal_data(&error);
}

#[tokio::test]
async fn email_to_a_silent_server_times_out_as_transient() {
    let server = smtp_server(Smtp::Silent).await;
    let sender =
        EmailSender::new(&smtp_config(server.addr.port()), Duration::from_millis(300)).unwrap();

    let started = Instant::now();
    let error = sender.send(&outgoing(ADDRESS)).await.unwrap_err();

    assert_eq!(error, transient("smtp timeout"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn email_to_no_address_is_permanent_and_sends_nothing() {
    let mut server = smtp_server(Smtp::Accept).await;
    let sender = EmailSender::new(&smtp_config(server.addr.port()), TIMEOUT).unwrap();

    for bad in [
        "",
        "ola.nordmann",
        "ola.nordmann@example.no\r\nBcc: x@example.no",
    ] {
        let error = sender.send(&outgoing(bad)).await.unwrap_err();
        assert_eq!(error, permanent("email address invalid"), "{bad:?}");
        assert_no_personal_data(&error);
    }
    assert!(server.mails.try_recv().is_err());
}

#[test]
fn email_config_errors_name_the_setting() {
    let mut config = smtp_config(25);
    config.host = String::new();
    let error = EmailSender::new(&config, TIMEOUT).unwrap_err();
    assert!(matches!(
        error,
        ChannelConfigError::Missing("delivery.smtp.host")
    ));
    assert_eq!(error.to_string(), "delivery.smtp.host: not set");

    let mut config = smtp_config(25);
    config.from = "not an address".into();
    config.password = Secret::new("smtp-passord".into());
    let error = EmailSender::new(&config, TIMEOUT).unwrap_err();
    assert!(
        error.to_string().starts_with("delivery.smtp.from: "),
        "{error}"
    );
    assert!(!error.to_string().contains("smtp-passord"));
    assert!(!format!("{error:?}").contains("smtp-passord"));

    let error = EmailSender::new(&smtp_config(25), Duration::ZERO).unwrap_err();
    assert!(
        error.to_string().starts_with("delivery.attempt_timeout: "),
        "{error}"
    );
}

#[tokio::test]
async fn email_tls_settings_build() {
    for tls in [SmtpTls::Starttls, SmtpTls::Tls] {
        let mut config = smtp_config(587);
        config.host = "smtp.example.no".into();
        config.tls = tls;
        EmailSender::new(&config, TIMEOUT).unwrap();
    }
}

// ----- SMS -----

#[tokio::test]
async fn sms_posts_json_with_the_token_and_the_idempotency_key() {
    let mut server = http_server(|_| Some((200, r#"{"id":"gw-1"}"#.into()))).await;
    let sender = SmsSender::new(&sms_config(format!("{}/v1/sms", server.url)), TIMEOUT).unwrap();

    sender.send(&outgoing(NUMBER)).await.unwrap();

    let request = server.next().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/sms");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("authorization"),
        Some("Bearer sms-token-9f8e7d")
    );
    assert_eq!(request.header("idempotency-key"), Some(KEY));
    assert_eq!(
        request.json(),
        serde_json::json!({
            "to": "+4791234567",
            "from": "Barnevernet",
            "message": format!("{SUBJECT}\n{BODY}"),
            "reference": KEY,
        })
    );
}

#[tokio::test]
async fn sms_keeps_e164_numbers_and_sends_no_authorization_without_a_token() {
    let mut server = http_server(|_| Some((202, String::new()))).await;
    let mut config = sms_config(server.url.clone());
    config.token = Secret::default();
    let sender = SmsSender::new(&config, TIMEOUT).unwrap();

    sender.send(&outgoing("+46701234567")).await.unwrap();

    let request = server.next().await;
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.json()["to"], "+46701234567");
}

#[tokio::test]
async fn sms_replies_are_classified_by_status() {
    let server = http_server(status_from_path).await;
    for (status, expected) in [
        (200, None),
        (204, None),
        (503, Some(transient("http 503"))),
        (500, Some(transient("http 500"))),
        (429, Some(transient("http 429"))),
        (408, Some(transient("http 408"))),
        (400, Some(permanent("http 400"))),
        (401, Some(permanent("http 401"))),
        (404, Some(permanent("http 404"))),
        (422, Some(permanent("http 422"))),
        (301, Some(permanent("http 301"))),
    ] {
        let url = format!("{}/status/{status}", server.url);
        let sender = SmsSender::new(&sms_config(url), TIMEOUT).unwrap();
        let result = sender.send(&outgoing(NUMBER)).await;
        assert_eq!(result.clone().err(), expected, "status {status}");
        if let Err(error) = result {
            assert_no_personal_data(&error);
        }
    }
}

#[tokio::test]
async fn sms_gateway_that_never_answers_times_out_as_transient() {
    let mut server = http_server(|_| None).await;
    let sender =
        SmsSender::new(&sms_config(server.url.clone()), Duration::from_millis(300)).unwrap();

    let started = Instant::now();
    let error = sender.send(&outgoing(NUMBER)).await.unwrap_err();

    assert_eq!(error, transient("http timeout"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.next().await; // it did arrive
}

#[tokio::test]
async fn sms_with_nothing_listening_is_transient() {
    let url = format!("http://127.0.0.1:{}/sms", closed_port().await);
    let sender = SmsSender::new(&sms_config(url), TIMEOUT).unwrap();

    let error = sender.send(&outgoing(NUMBER)).await.unwrap_err();

    assert_eq!(error, transient("http connect"));
    assert_no_personal_data(&error);
}

#[tokio::test]
async fn sms_to_no_number_is_permanent_and_sends_nothing() {
    let mut server = http_server(|_| Some((200, String::new()))).await;
    let sender = SmsSender::new(&sms_config(server.url.clone()), TIMEOUT).unwrap();

    for bad in ["", ADDRESS, "9123456", "912345678", "+47 abc"] {
        let error = sender.send(&outgoing(bad)).await.unwrap_err();
        assert_eq!(error, permanent("sms number invalid"), "{bad:?}");
        assert_no_personal_data(&error);
    }
    assert!(server.requests.try_recv().is_err());
}

#[test]
fn sms_config_errors_name_the_setting_and_not_the_token() {
    for (url, setting) in [
        ("", "delivery.sms.url"),
        ("ftp://gw.example.no/sms", "delivery.sms.url"),
    ] {
        let error = SmsSender::new(&sms_config(url.into()), TIMEOUT).unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with(&format!("{setting}: ")), "{text}");
        assert!(!text.contains("sms-token") && !format!("{error:?}").contains("sms-token"));
    }
    let mut config = sms_config("https://gw.example.no/sms?key=gw-secret".into());
    config.sender = " ".into();
    let error = SmsSender::new(&config, TIMEOUT).unwrap_err();
    assert_eq!(error.to_string(), "delivery.sms.sender: not set");

    let error = SmsSender::new(&sms_config("not a url?key=gw-secret".into()), TIMEOUT).unwrap_err();
    assert!(!error.to_string().contains("gw-secret"), "{error}");
}

// ----- webhooks -----

/// A receiving platform: checks the signature with `verify` as docs/notifications.md says (5
/// minutes' tolerance), 204 when it holds, 401 when not.
async fn webhook_receiver() -> HttpServer {
    http_server(|request| {
        let now = chrono::Utc::now().timestamp();
        let signature = request.header("x-landsby-signature").unwrap_or_default();
        let good = verify(SECRET.as_bytes(), signature, &request.body, now, 300);
        Some(if good {
            (204, String::new())
        } else {
            (401, r#"{"error":"bad signature"}"#.into())
        })
    })
    .await
}

#[tokio::test]
async fn webhook_is_signed_and_the_receiver_verifies_it() {
    let mut server = webhook_receiver().await;
    let sender = WebhookSender::new(
        &webhook_config(format!("{}/hooks/landsby", server.url), SECRET),
        TIMEOUT,
    )
    .unwrap();

    let before = chrono::Utc::now().timestamp();
    sender.send(&outgoing("")).await.unwrap();
    let after = chrono::Utc::now().timestamp();

    let request = server.next().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/landsby");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("idempotency-key"), Some(KEY));

    let signature = request.header("x-landsby-signature").unwrap();
    let (t, v1) = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature header {signature:?}"));
    let t: i64 = t.parse().unwrap();
    assert!((before..=after).contains(&t));
    assert_eq!(v1.len(), 64);
    assert!(
        v1.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(signature, sign(SECRET.as_bytes(), t, &request.body));

    let json = request.json();
    assert_eq!(
        json,
        serde_json::json!({
            "notification_id": "0190f0e2-7c1a-7d3e-9a4b-5c6d7e8f9012",
            "idempotency_key": KEY,
            "agency": AGENCY,
            "case_id": "0190f0e2-0000-7000-8000-000000000042",
            "kind": "visit_scheduled",
            "language": "nn",
            "subject": SUBJECT,
            "body": BODY,
            "sent_at": json["sent_at"],
        })
    );
    let sent_at = DateTime::parse_from_rfc3339(json["sent_at"].as_str().unwrap()).unwrap();
    assert_eq!(sent_at.timestamp(), t);

    // The receiver's checks: the right secret within 5 minutes holds; anything else does not.
    let body = &request.body;
    assert!(verify(SECRET.as_bytes(), signature, body, t + 299, 300));
    assert!(!verify(b"whsec_wrong", signature, body, t, 300));
    assert!(
        !verify(SECRET.as_bytes(), signature, body, t + 3600, 300),
        "old"
    );
    assert!(
        !verify(SECRET.as_bytes(), signature, body, t - 3600, 300),
        "future"
    );
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert!(!verify(SECRET.as_bytes(), signature, &tampered, t, 300));
    let replayed = sign(SECRET.as_bytes(), t - 3600, body);
    assert!(!verify(SECRET.as_bytes(), &replayed, body, t, 300));
}

#[tokio::test]
async fn webhook_signed_with_the_wrong_secret_is_refused_permanently() {
    let mut server = webhook_receiver().await;
    let sender =
        WebhookSender::new(&webhook_config(server.url.clone(), "whsec_wrong"), TIMEOUT).unwrap();

    let error = sender.send(&outgoing("")).await.unwrap_err();

    assert_eq!(error, permanent("http 401"));
    assert_no_personal_data(&error);
    let request = server.next().await;
    let signature = request.header("x-landsby-signature").unwrap();
    assert!(verify(
        b"whsec_wrong",
        signature,
        &request.body,
        chrono::Utc::now().timestamp(),
        300
    ));
}

#[tokio::test]
async fn webhook_failures_are_classified_without_personal_data() {
    let server = http_server(status_from_path).await;
    for (status, expected) in [
        (503, transient("http 503")),
        (429, transient("http 429")),
        (410, permanent("http 410")),
    ] {
        let url = format!("{}/status/{status}", server.url);
        let sender = WebhookSender::new(&webhook_config(url, SECRET), TIMEOUT).unwrap();
        let error = sender.send(&outgoing("")).await.unwrap_err();
        assert_eq!(error, expected);
        assert_no_personal_data(&error);
    }

    let silent = http_server(|_| None).await;
    let sender = WebhookSender::new(
        &webhook_config(silent.url.clone(), SECRET),
        Duration::from_millis(300),
    )
    .unwrap();
    assert_eq!(
        sender.send(&outgoing("")).await.unwrap_err(),
        transient("http timeout")
    );

    let url = format!("http://127.0.0.1:{}/", closed_port().await);
    let sender = WebhookSender::new(&webhook_config(url, SECRET), TIMEOUT).unwrap();
    assert_eq!(
        sender.send(&outgoing("")).await.unwrap_err(),
        transient("http connect")
    );
}

#[test]
fn webhook_config_errors_name_the_setting_and_not_the_secret() {
    let error = WebhookSender::new(
        &webhook_config("https://hooks.example.no".into(), ""),
        TIMEOUT,
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "delivery.webhook.secret: not set");

    for url in ["", "hooks.example.no/landsby", "mailto:x@example.no"] {
        let error = WebhookSender::new(&webhook_config(url.into(), SECRET), TIMEOUT).unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(text.starts_with("delivery.webhook.url: "), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}
