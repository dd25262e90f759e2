//! Compiles the contracts in `proto/` with protox (no system protoc) and writes the descriptor set
//! that server reflection serves.

use std::path::{Path, PathBuf};

/// Messages that carry personal data get a redacting `Debug` (in `src/redact.rs`) instead of the
/// derived one, so a stray `{:?}` can never put a name, an address or an identity number in a log.
const REDACTED_DEBUG: &[&str] = &[
    "landsby.common.v1.PostalAddress",
    "landsby.common.v1.ContactPoint",
    "landsby.case.v1.Child",
    "landsby.case.v1.FosterHome",
    "landsby.case.v1.VillageMember",
    "landsby.case.v1.ChildView",
    "landsby.visitation.v1.Frame",
    "landsby.visitation.v1.Participant",
    "landsby.visitation.v1.VisitReport",
    "landsby.visitation.v1.Cancellation",
    "landsby.visitation.v1.NoShow",
    "landsby.visitation.v1.Adjustment",
    "landsby.visitation.v1.ScopeVersion",
    "landsby.visitation.v1.AdjustVisitationPlanRequest",
    "landsby.visitation.v1.RecordNoShowRequest",
    "landsby.notification.v1.Notification",
    "landsby.notification.v1.Recipient",
    "landsby.notification.v1.InboxItem",
    "landsby.notification.v1.SendNotificationRequest",
    "landsby.notification.v1.CaseProtection",
];

fn proto_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            proto_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut files = Vec::new();
    proto_files(&root, &mut files)?;
    files.sort();
    // tonic-prost-build does not print rerun-if-changed for protox input; do it for every file.
    println!("cargo:rerun-if-changed={}", root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(&root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;

    let fds = protox::Compiler::new([&root])?
        .include_source_info(true)
        .include_imports(true)
        .open_files(&relative)?
        .file_descriptor_set();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("landsby_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .skip_debug(REDACTED_DEBUG.iter().copied())
        .compile_fds(fds)?;
    Ok(())
}
