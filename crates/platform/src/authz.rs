//! Which roles may call which RPC, declared once per service with [`rpc_table!`]: the RPC enum, its
//! names, its full methods (as audit rows record them) and its roles. [`role_table`] renders it as
//! `docs/security.md` carries it, and [`contract_methods`] lists a service's RPCs from the contract,
//! so each service's tests can check that every RPC has a row and the docs are current.

use landsby_domain::Role;

/// Declares `pub enum Rpc` for one gRPC service: `rpc_table!("landsby.case.v1.CaseService";
/// GetCase => STAFF, ...)`. Each RPC names the roles that may call it.
#[macro_export]
macro_rules! rpc_table {
    ($service:literal; $($rpc:ident => $roles:expr),* $(,)?) => {
        /// The RPCs of the service, each with the roles that may call it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Rpc {
            $(
                #[allow(missing_docs)]
                $rpc,
            )*
        }

        impl Rpc {
            /// The fully qualified service.
            pub const SERVICE: &'static str = $service;

            /// Every RPC, in the order of the table.
            pub const ALL: &'static [Rpc] = &[$(Rpc::$rpc),*];

            /// The method name in the contract.
            pub fn name(self) -> &'static str {
                match self {
                    $(Rpc::$rpc => stringify!($rpc),)*
                }
            }

            /// The full method, as audit rows record it.
            pub fn method(self) -> &'static str {
                match self {
                    $(Rpc::$rpc => concat!($service, "/", stringify!($rpc)),)*
                }
            }

            /// The roles that may call it.
            pub fn allowed(self) -> &'static [landsby_domain::Role] {
                match self {
                    $(Rpc::$rpc => $roles,)*
                }
            }

            /// The role table as Markdown, as `docs/security.md` carries it.
            pub fn role_table() -> String {
                $crate::authz::role_table(
                    Self::SERVICE,
                    Self::ALL.iter().map(|r| (r.name(), r.allowed())),
                )
            }

            /// For the service's tests: every RPC of the contract has a row with roles, and no row
            /// is extra; then `docs/security.md` carries the table under `roles:<docs_key>`.
            pub fn check(docs_key: &str) -> Result<(), String> {
                let mut ours: Vec<&str> = Self::ALL.iter().map(|r| r.name()).collect();
                ours.sort_unstable();
                let contract = $crate::authz::contract_methods(Self::SERVICE);
                if contract != ours {
                    return Err(format!(
                        "the contract has {contract:?}, the table {ours:?}"
                    ));
                }
                if let Some(r) = Self::ALL.iter().find(|r| r.allowed().is_empty()) {
                    return Err(format!("{} has no role", r.name()));
                }
                $crate::authz::check_documented(docs_key, &Self::role_table())
            }
        }
    };
}

/// A service's RPCs as a Markdown table of roles: a row per RPC, `yes` where the role may call it.
pub fn role_table<'a>(service: &str, rpcs: impl Iterator<Item = (&'a str, &'a [Role])>) -> String {
    let short = service.rsplit('.').next().unwrap_or(service);
    let mut s = String::from("| RPC |");
    for role in Role::ALL {
        s.push_str(&format!(" `{}` |", role.as_str()));
    }
    s.push_str("\n|---|");
    for _ in Role::ALL {
        s.push_str("---|");
    }
    s.push('\n');
    for (name, allowed) in rpcs {
        s.push_str(&format!("| `{short}/{name}` |"));
        for role in Role::ALL {
            s.push_str(if allowed.contains(role) {
                " yes |"
            } else {
                " — |"
            });
        }
        s.push('\n');
    }
    s
}

/// The RPC names of `service` (fully qualified) as the contract declares them, sorted.
pub fn contract_methods(service: &str) -> Vec<String> {
    use prost::Message;
    let Ok(fds) = prost_types::FileDescriptorSet::decode(landsby_proto::FILE_DESCRIPTOR_SET) else {
        return Vec::new();
    };
    let (package, name) = service.rsplit_once('.').unwrap_or(("", service));
    let mut methods: Vec<String> = fds
        .file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| f.service.iter())
        .filter(|s| s.name() == name)
        .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
        .collect();
    methods.sort();
    methods
}

/// Whether `docs/security.md` carries `table` under `roles:<key>`; the error shows the table as it
/// should be.
pub fn check_documented(key: &str, table: &str) -> Result<(), String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/security.md");
    let doc = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    if documented_table(&doc, key) == Some(table.trim_end()) {
        Ok(())
    } else {
        Err(format!(
            "docs/security.md's {key} table is out of date:\n{table}"
        ))
    }
}

/// The part of `doc` between `<!-- roles:<key>:begin -->` and `<!-- roles:<key>:end -->`, trimmed of
/// the line breaks next to the markers.
pub fn documented_table<'a>(doc: &'a str, key: &str) -> Option<&'a str> {
    let begin = format!("<!-- roles:{key}:begin -->");
    let end = format!("<!-- roles:{key}:end -->");
    let start = doc.find(&begin)? + begin.len();
    let stop = doc[start..].find(&end)? + start;
    Some(doc[start..stop].trim_matches('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_lists_the_case_service_methods() {
        let methods = contract_methods("landsby.case.v1.CaseService");
        assert!(methods.iter().any(|m| m == "CreateCase"));
        assert!(contract_methods("landsby.nope.v1.Nope").is_empty());
    }

    #[test]
    fn a_documented_table_is_found_between_its_markers() {
        let doc = "x\n<!-- roles:a:begin -->\n| t |\n<!-- roles:a:end -->\ny";
        assert_eq!(documented_table(doc, "a"), Some("| t |"));
        assert_eq!(documented_table(doc, "b"), None);
    }
}
