//! `cargo xtask book`: builds the mdBook in `book/` into `book/book`, installing mdbook
//! with `cargo install` when it is missing, and checks it: every `{{#include}}` names a
//! file that exists and, with `:anchor`, an anchor that the file defines (mdbook would
//! include nothing for a missing anchor); every link of the built book to a page or a file
//! of the book resolves, with its `#fragment`; every Rust code block is meant to compile
//! and does: it includes a `.rs` file that the workspace or the guests build (an inline
//! snippet is an error unless it is marked `rust,ignore`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, root, Result};

/// The mdbook version the book is built with.
const MDBOOK_VERSION: &str = "0.5.4";

/// Entry point of `cargo xtask book`.
pub fn run(args: &[String]) -> Result {
    if let Some(extra) = args.first() {
        return Err(format!("`cargo xtask book` takes no arguments (got `{extra}`)").into());
    }
    build()
}

/// Builds the book, failing when an `{{#include}}` names a missing file or anchor, or a
/// link of the built book leads nowhere. Every problem is named at once.
pub fn build() -> Result {
    let book = root().join("book");
    let mut problems = check_includes(&book.join("src"))?;
    problems.extend(check_rust_blocks(&book.join("src"))?);
    if !problems.is_empty() {
        return Err(format!(
            "the book's includes are broken ({} problems):\n  {}",
            problems.len(),
            problems.join("\n  ")
        )
        .into());
    }
    ensure_mdbook()?;
    let out = Command::new("mdbook")
        .current_dir(root())
        .args(["build", "book"])
        .output()
        .map_err(|e| format!("cannot run mdbook: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    eprint!("{log}");
    if !out.status.success() || log.contains("ERROR") {
        return Err("`mdbook build book` failed or reported an error (see above)".into());
    }
    let problems = check_links(&book.join("book"))?;
    if !problems.is_empty() {
        return Err(format!(
            "the built book has broken links ({} problems; a link in an included file is \
             relative to the page that includes it):\n  {}",
            problems.len(),
            problems.join("\n  ")
        )
        .into());
    }
    eprintln!(
        "book written to {} (includes and links checked)",
        root().join("book/book/index.html").display()
    );
    Ok(())
}

/// Every file under `dir` whose name ends with `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in
            std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.to_string_lossy().ends_with(ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The problems of the `{{#include path}}` and `{{#include path:anchor}}` directives of
/// the Markdown files under `src`: missing files, and anchors that the file does not
/// define with `ANCHOR: name` and `ANCHOR_END: name`. Line ranges (`:10:20`) are not
/// checked.
pub fn check_includes(src: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for md in files(src, ".md")? {
        let text = std::fs::read_to_string(&md)?;
        let dir = md.parent().unwrap_or(src);
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(start) = rest.find("{{#include ") {
                let after = &rest[start + "{{#include ".len()..];
                let Some(end) = after.find("}}") else { break };
                let spec = after[..end].trim();
                rest = &after[end..];
                let at = format!(
                    "{}:{}",
                    md.strip_prefix(src).unwrap_or(&md).display(),
                    n + 1
                );
                let (file, anchor) = match spec.split_once(':') {
                    Some((f, a)) => (f, Some(a)),
                    None => (spec, None),
                };
                let target = dir.join(file);
                let Ok(content) = std::fs::read_to_string(&target) else {
                    problems.push(format!(
                        "{at}: `{{{{#include {spec}}}}}`: no file {}",
                        target.display()
                    ));
                    continue;
                };
                if let Some(anchor) =
                    anchor.filter(|a| !a.starts_with(|c: char| c.is_ascii_digit()))
                {
                    let defined = content.contains(&format!("ANCHOR: {anchor}"))
                        && content.contains(&format!("ANCHOR_END: {anchor}"));
                    if !defined {
                        problems.push(format!(
                            "{at}: `{{{{#include {spec}}}}}`: {file} has no anchor `{anchor}` (`ANCHOR: {anchor}` … `ANCHOR_END: {anchor}`)"
                        ));
                    }
                }
            }
        }
    }
    Ok(problems)
}

/// The problems of the Rust code blocks of the Markdown files under `src`: a block marked
/// `rust` must consist of `{{#include}}`s of `.rs` files, which the workspace, the guests or
/// the guest template build (so the snippet compiles); inline Rust that is not meant to
/// compile is marked `rust,ignore`.
pub fn check_rust_blocks(src: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for md in files(src, ".md")? {
        let text = std::fs::read_to_string(&md)?;
        let shown = md.strip_prefix(src).unwrap_or(&md).display().to_string();
        let mut block: Option<(usize, bool)> = None;
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if let Some(info) = trimmed.strip_prefix("```") {
                block = match block {
                    Some(_) => None,
                    None => Some((n + 1, info.trim() == "rust" || info.trim() == "rs")),
                };
                continue;
            }
            let Some((start, true)) = block else { continue };
            let included_rs = trimmed.starts_with("{{#include ")
                && trimmed
                    .trim_start_matches("{{#include ")
                    .split([':', '}'])
                    .next()
                    .is_some_and(|f| f.ends_with(".rs"));
            if !trimmed.is_empty() && !included_rs {
                problems.push(format!(
                    "{shown}:{start}: a Rust block with inline code (line {}); include the code from a `.rs` file that is built, or mark the block `rust,ignore`",
                    n + 1
                ));
                block = Some((start, false));
            }
        }
    }
    Ok(problems)
}

/// The problems of the links of the built book in `html_dir`: a relative `href` whose file
/// does not exist, or whose `#fragment` names no `id` of the page it leads to. Links out
/// of the book (`http:`, `https:`, `mailto:`) are not followed.
pub fn check_links(html_dir: &Path) -> Result<Vec<String>> {
    let pages = files(html_dir, ".html")?;
    let mut ids: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for page in &pages {
        let text = std::fs::read_to_string(page)?;
        ids.insert(
            page.clone(),
            attribute_values(&text, "id").into_iter().collect(),
        );
    }
    let mut problems = Vec::new();
    for page in &pages {
        // mdbook's generated pages (print, 404, the table of contents) repeat the others.
        let name = page.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if matches!(name, "print.html" | "404.html" | "toc.html") {
            continue;
        }
        let text = std::fs::read_to_string(page)?;
        let dir = page.parent().unwrap_or(html_dir);
        let shown = page
            .strip_prefix(html_dir)
            .unwrap_or(page)
            .display()
            .to_string();
        for href in attribute_values(&text, "href") {
            if href.is_empty()
                || href.starts_with("http:")
                || href.starts_with("https:")
                || href.starts_with("mailto:")
                || href.starts_with("javascript:")
                || href.starts_with("data:")
            {
                continue;
            }
            let href = href.replace("&amp;", "&");
            let (path, fragment) = match href.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (href.as_str(), None),
            };
            let path = path.split('?').next().unwrap_or("");
            let target = if path.is_empty() {
                page.clone()
            } else {
                normalize(&dir.join(path))
            };
            let target = if target.is_dir() {
                target.join("index.html")
            } else {
                target
            };
            if !target.exists() {
                problems.push(format!("{shown}: link `{href}` leads to no file"));
                continue;
            }
            if let (Some(f), Some(known)) = (fragment, ids.get(&target)) {
                if !f.is_empty() && !known.contains(f) {
                    problems.push(format!("{shown}: link `{href}`: no `#{f}` on that page"));
                }
            }
        }
    }
    Ok(problems)
}

/// `path` with its `.` and `..` components resolved (without touching the file system).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The values of every `name="…"` attribute in `html`.
fn attribute_values(html: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name}=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&needle) {
        let after = &rest[i + needle.len()..];
        let Some(end) = after.find('"') else { break };
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

fn ensure_mdbook() -> Result {
    let installed = util::output(Command::new("mdbook").arg("--version")).ok();
    if installed.is_some_and(|v| v.contains(MDBOOK_VERSION)) {
        return Ok(());
    }
    util::run(Command::new("cargo").args([
        "install",
        "mdbook",
        "--locked",
        "--version",
        MDBOOK_VERSION,
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = root().join("target/xtask-tests/book").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn includes_of_missing_files_and_anchors_are_all_named() {
        let dir = fixture(
            "includes",
            &[
                ("src/a.md", "{{#include code.rs:good}}\n{{#include code.rs:gone}}\n{{#include nothing.md}}\n"),
                ("src/sub/b.md", "{{#include ../code.rs}} and {{#include ../code.rs:10:20}}\n"),
                ("src/code.rs", "// ANCHOR: good\nfn f() {}\n// ANCHOR_END: good\n"),
            ],
        );
        let problems = check_includes(&dir.join("src")).unwrap();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].starts_with("a.md:2:") && problems[0].contains("no anchor `gone`"),
            "{problems:#?}"
        );
        assert!(
            problems[1].starts_with("a.md:3:") && problems[1].contains("no file"),
            "{problems:#?}"
        );
    }

    #[test]
    fn broken_links_and_fragments_are_all_named() {
        let dir = fixture(
            "links",
            &[
                (
                    "book/index.html",
                    concat!(
                        "<a href=\"user/guide.html\">ok</a> <a href=\"user/guide.html#setup\">ok</a> ",
                        "<a href=\"https://example.org/x\">out</a> <a href=\"#top\">ok</a> <h1 id=\"top\"></h1>",
                        "<a href=\"user/missing.html\">broken</a> <a href=\"user/guide.html#nowhere\">broken</a>"
                    ),
                ),
                ("book/user/guide.html", "<h2 id=\"setup\"></h2><a href=\"../index.html#top\">ok</a><a href=\"../ARCHITECTURE.md\">broken</a>"),
                ("book/print.html", "<a href=\"not-checked.html\">print page</a>"),
            ],
        );
        let problems = check_links(&dir.join("book")).unwrap();
        assert_eq!(
            problems,
            vec![
                "index.html: link `user/missing.html` leads to no file".to_string(),
                "index.html: link `user/guide.html#nowhere`: no `#nowhere` on that page"
                    .to_string(),
                "user/guide.html: link `../ARCHITECTURE.md` leads to no file".to_string(),
            ]
        );
    }

    #[test]
    fn inline_rust_is_named_and_included_rust_passes() {
        let dir = fixture(
            "rust",
            &[(
                "src/a.md",
                "```rust\n{{#include ../x.rs:part}}\n```\n\n```rust\nfn inline() {}\nfn more() {}\n```\n\n```rust,ignore\nfn shown_only() {}\n```\n\n```rust\n{{#include notes.md}}\n```\n",
            )],
        );
        let problems = check_rust_blocks(&dir.join("src")).unwrap();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].starts_with("a.md:5: ") && problems[0].contains("line 6"),
            "{problems:#?}"
        );
        assert!(problems[1].starts_with("a.md:14: "), "{problems:#?}");
    }

    /// The real book passes its include check (the link check needs the built book; `cargo
    /// xtask test` builds it).
    #[test]
    fn the_real_book_has_no_broken_include_and_no_inline_rust() {
        let src = root().join("book/src");
        let mut problems = check_includes(&src).unwrap();
        problems.extend(check_rust_blocks(&src).unwrap());
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
