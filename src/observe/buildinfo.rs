//! The kubelet's version from its binary's Go build information, read — never run.
//!
//! Every Go binary since Go 1.18 carries, in the ELF section `.go.buildinfo`, the build
//! information `go version -m` prints (Go's debug/buildinfo `Read`): a 32-byte header
//! (`"\xff Go buildinf:"`, pointer size, flags) followed by two varint-length-prefixed
//! strings, the Go version and the module information. The module information lists the
//! main package's path, its module and version, the dependencies and the build settings;
//! cmd/go/internal/load/pkg.go `setBuildInfo` records `-ldflags` there **unless the build
//! used `-trimpath`** (go.dev/issue/52372).
//!
//! Kubernetes sets the version with `-X 'k8s.io/component-base/version.gitVersion=vX.Y.Z'`
//! (hack/lib/version.sh `kube::version::ldflags`, also `k8s.io/client-go/pkg/version`), so a
//! kubelet built without `-trimpath` states its version in its `-ldflags` setting. Release
//! builds, however, use `-trimpath` and `-s -w` (hack/lib/golang.sh
//! `kube::golang::build_binaries`, when not `DBG=1`): no `-ldflags` setting and no symbol
//! table through which the `gitVersion` string could be found. What remains is the main
//! module's version: `k8s.io/kubernetes vX.Y.Z` when the kubelet was built as a module
//! dependency (`go build k8s.io/kubernetes/cmd/kubelet@vX.Y.Z`, as
//! tests/kubelet-truth/build-kubelet.sh does) or stamped from a clean tagged checkout;
//! `(devel)` otherwise. When neither names a version the caller falls through to the
//! kubelet's `kubernetes_build_info` and the Node's status.
//!
//! Reading is bounded: the ELF header, the section headers, the section-name table and the
//! `.go.buildinfo` section only (object's `ReadCache` reads just the ranges asked for), each
//! checked against a cap first; never the whole (~100 MB) file.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;

use object::elf::{FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, SectionHeader};
use object::read::ReadCache;
use object::Endianness;

use crate::io::host::HostRoot;
use crate::model::version::KubeVersion;

/// Caps on what is read of the binary.
const MAX_SECTIONS: usize = 4096;
const MAX_SHSTRTAB: u64 = 1024 * 1024;
const MAX_BUILDINFO: u64 = 1024 * 1024;

/// `debug/buildinfo` `buildInfoMagic` and the header size.
const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_SIZE: usize = 32;
/// Header flag: strings inline after the header (Go 1.18+), `flagsVersionInl`.
const FLAGS_VERSION_INL: u8 = 0x2;

/// Why no version came from the build information.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildInfoError {
    /// The executable could not be opened or resolved (`/proc/<pid>/exe`, or its path
    /// inside the host root): the OS error or the host-path error, in words.
    #[error("cannot open the kubelet's executable: {0}")]
    Open(String),
    /// The path names a directory, FIFO, socket or device.
    #[error("the kubelet's executable is not a regular file")]
    NotAFile,
    /// Neither a 32- nor a 64-bit ELF file.
    #[error("not an ELF executable")]
    NotElf,
    /// The ELF headers or the build information do not decode: which part, in words.
    #[error("malformed ELF: {0}")]
    Malformed(&'static str),
    /// A part of the file is over its read cap and was not read.
    #[error("{what} larger than {limit} bytes")]
    TooLarge {
        /// Which part: the section header table, the section name table or
        /// `.go.buildinfo`.
        what: &'static str,
        /// Its cap (for the section header table, a number of entries rather than bytes).
        limit: u64,
    },
    /// No `.go.buildinfo` section, no build-information magic in it, or an empty Go
    /// version: not a Go binary (or one too old to carry build information).
    #[error("no Go build information (.go.buildinfo section)")]
    NoBuildInfo,
    /// Build information in the pre-1.18 layout, where the strings sit behind pointers
    /// into the data segment; not followed.
    #[error("Go build information older than Go 1.18 (pointer format), not read")]
    OldFormat,
    /// The build information was read but names no Kubernetes version: what it has
    /// instead (ldflags, `-trimpath`, the main module).
    #[error("no version in the Go build information ({0})")]
    NoVersion(String),
}

/// The parts of the build information that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.26.10`.
    pub go_version: String,
    /// `path` line: the main package (`k8s.io/kubernetes/cmd/kubelet`).
    pub path: Option<String>,
    /// `mod` line: the main module and its version.
    pub main_module: Option<(String, String)>,
    /// Build settings (`-ldflags`, `-trimpath`, `CGO_ENABLED`, ...), unquoted.
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    /// The value of build setting `key` (`-ldflags`, `-trimpath`, `vcs.revision`, …); the
    /// last one when the key repeats, `None` when it is absent.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The kubelet's GitVersion: the `-X ...version.gitVersion=` of `-ldflags`, else the
    /// `k8s.io/kubernetes` main module's release version. `Err` says what was there.
    pub fn kubernetes_version(&self) -> Result<String, BuildInfoError> {
        if let Some(v) = self.setting("-ldflags").and_then(git_version_from_ldflags) {
            return Ok(v);
        }
        if let Some((path, version)) = &self.main_module {
            if path == "k8s.io/kubernetes" && is_release_version(version) {
                return Ok(version.clone());
            }
        }
        let ldflags = if self.setting("-ldflags").is_some() {
            "-ldflags recorded without a gitVersion"
        } else if self.setting("-trimpath") == Some("true") {
            "built with -trimpath, so -ldflags is not recorded"
        } else {
            "no -ldflags recorded"
        };
        let module = match &self.main_module {
            Some((p, v)) => format!("main module {p} {v}"),
            None => "no main module".to_string(),
        };
        Err(BuildInfoError::NoVersion(format!("{ldflags}; {module}")))
    }
}

/// `vX.Y.Z` or `vX.Y.Z-{alpha,beta,rc}.N` (a Kubernetes release tag; not a Go
/// pseudo-version such as `v1.37.3-0.20260101000000-abcdef123456`).
fn is_release_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    if nums.len() != 3
        || !nums
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    match pre {
        None => true,
        Some(p) => match p.split_once('.') {
            Some((kind, n)) => {
                matches!(kind, "alpha" | "beta" | "rc")
                    && !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
            }
            None => false,
        },
    }
}

/// cmd/internal/quoted `Split`: fields separated by spaces, a field may be wholly
/// enclosed in `'` or `"` (no escapes inside). `None` on an unterminated quote.
fn split_quoted(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        let Some(first) = rest.chars().next() else {
            return Some(out);
        };
        if first == '\'' || first == '"' {
            let body = &rest[1..];
            let end = body.find(first)?;
            out.push(body[..end].to_string());
            rest = &body[end + 1..];
        } else {
            let end = rest.find([' ', '\t', '\n', '\r']).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
}

/// The GitVersion a recorded `-ldflags` sets. The recorded value is the raw flag
/// (`PerPackageFlag.String`), possibly with a package pattern (`all=-X ...`,
/// cmd/go/internal/load/flag.go `set`); the linker's `-X importpath.name=value` may be
/// written `-X v`, `-X=v`, `--X v`. The last assignment wins, as in the linker.
pub fn git_version_from_ldflags(ldflags: &str) -> Option<String> {
    let trimmed = ldflags.trim();
    let flags = if trimmed.starts_with('-') {
        trimmed
    } else {
        trimmed.split_once('=').map(|(_, v)| v)?
    };
    let words = split_quoted(flags)?;
    let mut found: Option<(u8, String)> = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].trim_start_matches('-');
        let assignment = if words[i].starts_with('-') && w == "X" {
            i += 1;
            words.get(i).map(String::as_str)
        } else if words[i].starts_with('-') {
            w.strip_prefix("X=")
        } else {
            None
        };
        i += 1;
        let Some((var, value)) = assignment.and_then(|a| a.split_once('=')) else {
            continue;
        };
        let rank = match var {
            "k8s.io/component-base/version.gitVersion" => 2,
            "k8s.io/client-go/pkg/version.gitVersion" => 1,
            _ => continue,
        };
        // The default when no version was stamped is `v0.0.0-master+$Format:%H$`
        // (k8s.io/component-base/version/base.go): not a version.
        if KubeVersion::parse(value).is_none() || value.starts_with("v0.") {
            continue;
        }
        if found.as_ref().is_none_or(|(r, _)| rank >= *r) {
            found = Some((rank, value.to_string()));
        }
    }
    found.map(|(_, v)| v)
}

/// Go's `strconv.Unquote` for the double-quoted values `runtime/debug` `BuildInfo.String`
/// writes (`quoteValue`: values with spaces, tabs, quotes or newlines). `None` when the
/// value uses an escape this does not know (then the setting is ignored, never guessed).
fn go_unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&h, 16).ok()?));
            }
            'u' => {
                let h: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'U' => {
                let h: String = chars.by_ref().take(8).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Parse the module information text (runtime/debug `ParseBuildInfo` lines).
pub fn parse_modinfo(go_version: &str, text: &str) -> BuildInfo {
    let mut bi = BuildInfo {
        go_version: go_version.to_string(),
        ..BuildInfo::default()
    };
    for line in text.lines() {
        let mut f = line.splitn(2, '\t');
        let (Some(word), Some(rest)) = (f.next(), f.next()) else {
            continue;
        };
        match word {
            "path" => bi.path = Some(rest.to_string()),
            "mod" => {
                let mut m = rest.split('\t');
                if let (Some(p), Some(v)) = (m.next(), m.next()) {
                    bi.main_module = Some((p.to_string(), v.to_string()));
                }
            }
            "build" => {
                let Some((k, v)) = rest.split_once('=') else {
                    continue;
                };
                let value = if v.starts_with('"') {
                    match go_unquote(v) {
                        Some(u) => u,
                        None => continue,
                    }
                } else {
                    v.to_string()
                };
                bi.settings.push((k.to_string(), value));
            }
            _ => {}
        }
    }
    bi
}

/// A varint-prefixed string at the start of `data` (Go's `binary.Uvarint`), and the rest.
fn varint_string(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    for (i, b) in data.iter().take(10).enumerate() {
        len |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let rest = &data[i + 1..];
            let n = usize::try_from(len).ok()?;
            return (n <= rest.len()).then(|| rest.split_at(n));
        }
    }
    None
}

/// Decode the contents of a `.go.buildinfo` section (debug/buildinfo `Read`, after
/// `searchMagic`: the blob is at a 16-byte aligned offset).
pub fn parse_section(data: &[u8]) -> Result<BuildInfo, BuildInfoError> {
    let start = (0..data.len())
        .step_by(16)
        .find(|&i| data[i..].starts_with(MAGIC))
        .ok_or(BuildInfoError::NoBuildInfo)?;
    let blob = &data[start..];
    if blob.len() < HEADER_SIZE {
        return Err(BuildInfoError::Malformed(
            "truncated build information header",
        ));
    }
    if blob[15] & FLAGS_VERSION_INL == 0 {
        return Err(BuildInfoError::OldFormat);
    }
    let (vers, rest) = varint_string(&blob[HEADER_SIZE..])
        .ok_or(BuildInfoError::Malformed("bad Go version string"))?;
    let (module, _) =
        varint_string(rest).ok_or(BuildInfoError::Malformed("bad module information string"))?;
    if vers.is_empty() {
        return Err(BuildInfoError::NoBuildInfo);
    }
    // Module framing: 16-byte sentinels around the text (cmd/go/internal/modload
    // infoStart/infoEnd), stripped as debug/buildinfo does.
    let module = if module.len() >= 33 && module[module.len() - 17] == b'\n' {
        &module[16..module.len() - 16]
    } else {
        &[][..]
    };
    Ok(parse_modinfo(
        &String::from_utf8_lossy(vers),
        &String::from_utf8_lossy(module),
    ))
}

fn section_bytes<Elf: FileHeader<Endian = Endianness>>(
    data: &ReadCache<File>,
) -> Result<Vec<u8>, BuildInfoError> {
    let malformed = |_| BuildInfoError::Malformed("unreadable ELF headers");
    let header = Elf::parse(data).map_err(malformed)?;
    let endian = header.endian().map_err(malformed)?;
    let shnum = header.shnum(endian, data).map_err(malformed)?;
    if shnum > MAX_SECTIONS {
        return Err(BuildInfoError::TooLarge {
            what: "section header table",
            limit: MAX_SECTIONS as u64,
        });
    }
    let headers = header.section_headers(endian, data).map_err(malformed)?;
    let strndx = header.shstrndx(endian, data).map_err(malformed)?;
    let strtab = headers
        .get(strndx as usize)
        .ok_or(BuildInfoError::Malformed("no section name table"))?;
    if strtab.sh_size(endian).into() > MAX_SHSTRTAB {
        return Err(BuildInfoError::TooLarge {
            what: "section name table",
            limit: MAX_SHSTRTAB,
        });
    }
    let sections = header.sections(endian, data).map_err(malformed)?;
    let (_, section) = sections
        .section_by_name(endian, b".go.buildinfo")
        .ok_or(BuildInfoError::NoBuildInfo)?;
    if section.sh_size(endian).into() > MAX_BUILDINFO {
        return Err(BuildInfoError::TooLarge {
            what: ".go.buildinfo section",
            limit: MAX_BUILDINFO,
        });
    }
    section
        .data(endian, data)
        .map(<[u8]>::to_vec)
        .map_err(|_| BuildInfoError::Malformed("unreadable .go.buildinfo section"))
}

/// The build information of an open executable.
pub fn read_file(file: File) -> Result<BuildInfo, BuildInfoError> {
    let meta = file
        .metadata()
        .map_err(|e| BuildInfoError::Open(e.to_string()))?;
    if !meta.is_file() {
        return Err(BuildInfoError::NotAFile);
    }
    let data = ReadCache::new(file);
    let bytes = match object::FileKind::parse(&data) {
        Ok(object::FileKind::Elf64) => section_bytes::<FileHeader64<Endianness>>(&data)?,
        Ok(object::FileKind::Elf32) => section_bytes::<FileHeader32<Endianness>>(&data)?,
        _ => return Err(BuildInfoError::NotElf),
    };
    parse_section(&bytes)
}

/// Open a file read-only, non-blocking (a FIFO put in its place cannot hang the agent).
fn open_nonblocking(path: &std::path::Path) -> Result<File, BuildInfoError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| BuildInfoError::Open(e.to_string()))
}

/// The build information of the kubelet process `pid` whose `/proc/<pid>/exe` names
/// `exe`. On a live host the running file itself is read, through the magic link (what
/// runs, even if the path was replaced since); on a host tree on disk, the file `exe`
/// names, resolved inside the root.
pub fn for_process(
    host: &HostRoot,
    pid: i32,
    exe: &str,
    live: bool,
) -> Result<BuildInfo, BuildInfoError> {
    let file = if live {
        open_nonblocking(&host.root().join(format!("proc/{pid}/exe")))?
    } else {
        let path = exe.strip_suffix(" (deleted)").unwrap_or(exe);
        let resolved = host
            .resolve(path, true)
            .map_err(|e| BuildInfoError::Open(e.to_string()))?;
        let mut real = host.root().to_path_buf();
        for c in resolved.split('/').filter(|c| !c.is_empty()) {
            real.push(c);
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
            .open(&real)
            .map_err(|e| BuildInfoError::Open(e.to_string()))?;
        file
    };
    read_file(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldflags_as_kubernetes_sets_them() {
        let ld = "all=-X 'k8s.io/client-go/pkg/version.buildDate=2026-01-01T00:00:00Z' -X 'k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z' -X 'k8s.io/client-go/pkg/version.gitVersion=v1.37.2' -X 'k8s.io/component-base/version.gitVersion=v1.37.2' -s -w";
        assert_eq!(git_version_from_ldflags(ld).as_deref(), Some("v1.37.2"));
        assert_eq!(
            git_version_from_ldflags(
                "-X=k8s.io/component-base/version.gitVersion=v1.30.2-eks-1552ad0"
            )
            .as_deref(),
            Some("v1.30.2-eks-1552ad0")
        );
        assert_eq!(
            git_version_from_ldflags("--X \"k8s.io/client-go/pkg/version.gitVersion=v1.29.1\"")
                .as_deref(),
            Some("v1.29.1")
        );
        for bad in [
            "",
            "-s -w",
            "-X main.version=v1.2.3",
            "-X 'k8s.io/component-base/version.gitVersion=v0.0.0-master+$Format:%H$'",
            "-X 'k8s.io/component-base/version.gitVersion=v1.37.2",
            "k8s.io/component-base/version.gitVersion=v1.37.2",
        ] {
            assert_eq!(git_version_from_ldflags(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn release_versions_only() {
        for ok in ["v1.37.2", "v1.36.0-rc.1", "v1.30.14"] {
            assert!(is_release_version(ok), "{ok}");
        }
        for bad in [
            "(devel)",
            "v1.37.3-0.20260101000000-abcdef123456",
            "v1.37",
            "1.37.2",
            "v1.37.2+dirty",
        ] {
            assert!(!is_release_version(bad), "{bad}");
        }
    }

    #[test]
    fn unquote() {
        assert_eq!(
            go_unquote(r#""-X 'a=b' \"c\"\tx\u00e9""#).as_deref(),
            Some("-X 'a=b' \"c\"\tx\u{e9}")
        );
        assert_eq!(go_unquote(r#""\q""#), None);
        assert_eq!(go_unquote("plain"), None);
    }
}
