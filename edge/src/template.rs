//! Config templates: `{{name}}` placeholders filled with the edge's ports,
//! upstream, certificate and working directory.
//!
//! A handful of fixed names and a literal replace, so a user's nginx or
//! HAProxy file stays readable as what it is; a name we do not know is an
//! error (a typo would otherwise reach the proxy as a bad directive).

use crate::error::EdgeError;

/// The values a template may use.
#[derive(Debug, Clone)]
pub struct Placeholders {
    /// `127.0.0.1:PORT`: the address the edge listens on.
    pub listen: String,
    /// `PORT` alone.
    pub port: String,
    /// `host:port` of the upstream server (plain HTTP/1.1).
    pub upstream: String,
    /// PEM certificate (nginx `ssl_certificate`).
    pub cert: String,
    /// PEM private key (nginx `ssl_certificate_key`).
    pub key: String,
    /// Certificate and key in one PEM file (HAProxy `crt`).
    pub cert_key: String,
    /// The edge's working directory: logs, pid file, temp files.
    pub dir: String,
}

impl Placeholders {
    /// Every placeholder name, for documentation and error messages.
    pub const NAMES: [&'static str; 7] = [
        "listen", "port", "upstream", "cert", "key", "cert_key", "dir",
    ];

    fn value(&self, name: &str) -> Option<&str> {
        Some(match name {
            "listen" => &self.listen,
            "port" => &self.port,
            "upstream" => &self.upstream,
            "cert" => &self.cert,
            "key" => &self.key,
            "cert_key" => &self.cert_key,
            "dir" => &self.dir,
            _ => return None,
        })
    }

    /// Fills every `{{name}}` in `template`; `origin` names it in errors.
    pub fn render(&self, template: &str, origin: &str) -> Result<String, EdgeError> {
        let mut out = String::with_capacity(template.len() + 256);
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| EdgeError::UnclosedPlaceholder {
                    origin: origin.into(),
                })?;
            let name = after[..end].trim();
            let value = self
                .value(name)
                .ok_or_else(|| EdgeError::UnknownPlaceholder {
                    origin: origin.into(),
                    name: name.into(),
                    known: Placeholders::NAMES
                        .map(|n| format!("{{{{{n}}}}}"))
                        .join(", "),
                })?;
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::EdgeKind;

    fn sample() -> Placeholders {
        Placeholders {
            listen: "127.0.0.1:4443".into(),
            port: "4443".into(),
            upstream: "127.0.0.1:8080".into(),
            cert: "/d/cert.pem".into(),
            key: "/d/key.pem".into(),
            cert_key: "/d/cert-key.pem".into(),
            dir: "/d".into(),
        }
    }

    #[test]
    fn fills_known_names_and_refuses_others() {
        let p = sample();
        assert_eq!(
            p.render("listen {{listen}}; x {{ upstream }};", "t")
                .unwrap(),
            "listen 127.0.0.1:4443; x 127.0.0.1:8080;"
        );
        let err = p.render("a {{upstraem}}", "my.conf").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("my.conf") && msg.contains("{{upstraem}}"),
            "{msg}"
        );
        assert!(msg.contains("{{upstream}}"), "{msg}");
        assert!(p.render("a {{listen", "t").is_err());
    }

    #[test]
    fn shipped_templates_render_without_leftovers() {
        let p = sample();
        for kind in EdgeKind::ALL {
            for t in [kind.tuned_template(), kind.naive_template()] {
                let out = p.render(t, kind.name()).unwrap();
                assert!(!out.contains("{{"), "{out}");
                assert!(out.contains("127.0.0.1:8080") && out.contains("127.0.0.1:4443"));
            }
        }
    }
}
