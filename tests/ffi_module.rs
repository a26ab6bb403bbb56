//! The PowerShell module: its files parse with the tree-sitter PowerShell grammar, its P/Invoke
//! declarations match the C header, the manifest's functions are defined, every cmdlet has
//! comment-based help with an example, and the Pester tests run where pwsh is installed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Collects ERROR and MISSING nodes with their positions.
fn errors(node: tree_sitter::Node, out: &mut Vec<String>) {
    if node.is_error() || node.is_missing() {
        let p = node.start_position();
        out.push(format!("{} at {}:{}", node.kind(), p.row + 1, p.column + 1));
    }
    let mut c = node.walk();
    for child in node.children(&mut c) {
        errors(child, out);
    }
}

fn parse_ps(rel: &str) -> (tree_sitter::Tree, String) {
    let text = read(rel);
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .expect("PowerShell grammar");
    let tree = parser.parse(&text, None).expect("parse");
    (tree, text)
}

#[test]
fn module_files_parse_without_error_nodes() {
    for rel in [
        "powershell/DirSync.psm1",
        "powershell/DirSync.psd1",
        "powershell/tests/DirSync.Tests.ps1",
    ] {
        let (tree, _) = parse_ps(rel);
        let mut errs = Vec::new();
        errors(tree.root_node(), &mut errs);
        assert!(errs.is_empty(), "{rel}: {errs:?}");
    }
}

/// Function names defined at the top level of a PowerShell script, found in the syntax tree.
fn defined_functions(tree: &tree_sitter::Tree, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(n) = stack.pop() {
        if n.kind() == "function_statement" {
            let mut c = n.walk();
            for child in n.children(&mut c) {
                if child.kind() == "function_name" {
                    out.push(text[child.byte_range()].to_string());
                }
            }
        }
        let mut c = n.walk();
        for child in n.children(&mut c) {
            stack.push(child);
        }
    }
    out
}

/// `FunctionsToExport = @( 'A', 'B' )` entries of the manifest.
fn manifest_functions(psd1: &str) -> Vec<String> {
    let start = psd1.find("FunctionsToExport").expect("FunctionsToExport");
    let rest = &psd1[start..];
    let open = rest.find("@(").expect("@(") + 2;
    let close = rest[open..].find(')').expect(")") + open;
    rest[open..close]
        .split(',')
        .map(|s| s.trim().trim_matches('\'').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn manifest_exports_are_defined_with_help() {
    let (tree, text) = parse_ps("powershell/DirSync.psm1");
    let defined = defined_functions(&tree, &text);
    let exported = manifest_functions(&read("powershell/DirSync.psd1"));
    assert!(exported.len() >= 25, "{exported:?}");
    for f in &exported {
        assert!(
            defined.contains(f),
            "{f} is exported but not defined in DirSync.psm1"
        );
        // Comment-based help with a synopsis and an example inside the function.
        let at = text
            .find(&format!("function {f} {{"))
            .unwrap_or_else(|| panic!("function {f}"));
        let body = &text[at..];
        let help_end = body.find("#>").unwrap_or(0);
        let help = &body[..help_end];
        assert!(
            help.contains(".SYNOPSIS") && help.contains(".EXAMPLE"),
            "{f} has no comment-based help with an example"
        );
        let verb = f.split('-').next().unwrap();
        assert!(
            [
                "Connect",
                "Disconnect",
                "Start",
                "Invoke",
                "Get",
                "Set",
                "Sync",
                "Test",
                "ConvertTo",
                "ConvertFrom",
                "Import",
                "Select",
                "Convert",
                "Export"
            ]
            .contains(&verb),
            "{f}: not an approved verb"
        );
        assert!(
            f.contains("-DirSync"),
            "{f}: noun without the DirSync prefix"
        );
    }
    // The module's own Export-ModuleMember list agrees with the manifest.
    for f in &exported {
        assert!(
            text.contains(&format!("'{f}'")),
            "{f} is missing from Export-ModuleMember"
        );
    }
}

/// Parameter kinds shared by C and C#: what must match between the header and a P/Invoke.
fn c_kind(t: &str) -> String {
    let t = t.trim();
    let stars = t.matches('*').count();
    let base = t
        .replace("const", "")
        .replace("struct", "")
        .replace('*', "");
    let base = base.split_whitespace().next().unwrap_or("").to_string();
    match (base.as_str(), stars) {
        (_, 2) => "out_ptr".into(),
        ("uint16_t", 1) if t.starts_with("const") => "wstr".into(),
        ("char", 1) if t.starts_with("const") => "str8".into(),
        (_, 1) => "ptr".into(),
        ("DirSyncStatus", 0) => "status".into(),
        ("uint32_t", 0) => "u32".into(),
        ("void", 0) => "void".into(),
        ("DirSyncProgressCallbackW", 0) => "callback_w".into(),
        ("DirSyncProgressCallback", 0) => "callback8".into(),
        (other, _) => format!("?{other}"),
    }
}

fn cs_kind(t: &str) -> String {
    let t = t.trim();
    let t = if let Some(i) = t.rfind(']') {
        &t[i + 1..]
    } else {
        t
    };
    let words: Vec<&str> = t.split_whitespace().collect();
    match words.as_slice() {
        ["out", "IntPtr"] => "out_ptr".into(),
        ["string"] => "wstr".into(),
        ["IntPtr"] => "ptr".into(),
        ["int"] => "status".into(),
        ["uint"] => "u32".into(),
        ["void"] => "void".into(),
        ["ProgressCallbackW"] => "callback_w".into(),
        other => format!("?{other:?}"),
    }
}

/// name -> (return kind, parameter kinds) from the header.
fn header_signatures(header: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let code: String = header
        .lines()
        .filter(|l| !l.trim_start().starts_with("//") && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
        .replace("extern \"C\" {", " ")
        .replace('}', " ");
    let mut out = BTreeMap::new();
    for decl in code.split(';') {
        let decl = decl.trim();
        if decl.contains("typedef") || !decl.contains("dirsync_") {
            continue;
        }
        let Some(open) = decl.find('(') else { continue };
        let head = &decl[..open];
        let Some(name_at) = head.rfind("dirsync_") else {
            continue;
        };
        let name = head[name_at..].trim().to_string();
        let ret = head[..name_at].replace("enum", "");
        let inner = &decl[open + 1..decl.rfind(')').unwrap()];
        let params: Vec<String> = if inner.trim() == "void" || inner.trim().is_empty() {
            Vec::new()
        } else {
            inner
                .split(',')
                .map(|p| {
                    // drop the parameter name
                    let p = p.trim();
                    let cut = p.rfind(['*', ' ']).unwrap();
                    c_kind(&p[..=cut])
                })
                .collect()
        };
        out.insert(name, (c_kind(&ret), params));
    }
    out
}

/// name -> (return kind, parameter kinds) of the `extern` declarations in DirSync.Native.cs.
fn pinvoke_signatures(cs: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    let mut rest = cs;
    while let Some(at) = rest.find("static extern ") {
        let decl = &rest[at + "static extern ".len()..];
        let end = decl.find(';').unwrap();
        let decl = &decl[..end];
        let open = decl.find('(').unwrap();
        let mut head = decl[..open].split_whitespace();
        let ret = head.next().unwrap();
        let name = head.next().unwrap().to_string();
        let inner = &decl[open + 1..decl.rfind(')').unwrap()];
        let params = if inner.trim().is_empty() {
            Vec::new()
        } else {
            inner
                .split(',')
                .map(|p| {
                    let p = p.trim();
                    let cut = p.rfind(' ').unwrap();
                    cs_kind(&p[..cut])
                })
                .collect()
        };
        out.insert(name, (cs_kind(ret), params));
        rest = &rest[at + 1..];
    }
    out
}

#[test]
fn pinvoke_declarations_match_the_header() {
    let header = header_signatures(&read("include/dirsync.h"));
    let cs = read("powershell/DirSync.Native.cs");
    let pinvoke = pinvoke_signatures(&cs);
    assert!(
        header.len() > 50,
        "{} functions in the header",
        header.len()
    );
    let mut checked = 0;
    for (name, sig) in &pinvoke {
        if name == "LoadLibraryW" {
            continue; // kernel32, Windows PowerShell only
        }
        let h = header.get(name).unwrap_or_else(|| {
            panic!("{name} is declared in DirSync.Native.cs but not in the header")
        });
        assert_eq!(
            sig, h,
            "{name}: P/Invoke (ret, params) differs from the header"
        );
        checked += 1;
    }
    // The module uses the UTF-16 form of every string-taking function.
    for (name, (_, params)) in &header {
        let takes_utf8 = params.iter().any(|p| p == "str8" || p == "callback8");
        if takes_utf8 {
            let w = format!("{name}_w");
            assert!(header.contains_key(&w), "{name} has no _w form");
            assert!(
                pinvoke.contains_key(&w),
                "{w} is not declared in DirSync.Native.cs"
            );
        }
    }
    assert!(checked >= 30, "only {checked} P/Invoke declarations");
}

#[test]
fn pester_tests_where_pwsh_is_installed() {
    let have = Command::new("pwsh")
        .args([
            "-NoProfile",
            "-Command",
            "$PSVersionTable.PSVersion.ToString()",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        eprintln!(
            "SKIPPED: pwsh is not installed (PowerShell cannot be installed on this machine); \
             run powershell/tests/DirSync.Tests.ps1 with Pester where pwsh is available"
        );
        return;
    }
    // A copy of the module with the library next to it, and a fixture folder.
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("DirSync");
    std::fs::create_dir_all(module.join("tests")).unwrap();
    for f in [
        "DirSync.psd1",
        "DirSync.psm1",
        "DirSync.Native.cs",
        "DirSync.Format.ps1xml",
        "tests/DirSync.Tests.ps1",
    ] {
        std::fs::copy(root().join("powershell").join(f), module.join(f)).unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().unwrap().parent().unwrap();
    for lib in ["libdirsync.so", "libdirsync.dylib", "dirsync.dll"] {
        if profile.join(lib).exists() {
            std::fs::copy(profile.join(lib), module.join(lib)).unwrap();
        }
    }
    let fixture = dir.path().join("fixture");
    std::fs::create_dir_all(&fixture).unwrap();
    std::fs::write(
        fixture.join("config.json"),
        read("tests/ffi/fixture/config.json"),
    )
    .unwrap();
    std::fs::write(fixture.join("src.ldif"), read("tests/ffi/fixture/src.ldif")).unwrap();
    let out = Command::new("pwsh")
        .args([
            "-NoProfile",
            "-Command",
            "Invoke-Pester -Path ./tests -Output Detailed -CI",
        ])
        .env("DIRSYNC_TEST_FIXTURE", &fixture)
        .current_dir(&module)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Pester failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_grammar_check_catches_broken_scripts() {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .unwrap();
    let tree = parser
        .parse("function Get-X { if ($a -eq { ) }", None)
        .unwrap();
    let mut errs = Vec::new();
    errors(tree.root_node(), &mut errs);
    assert!(!errs.is_empty(), "a broken script parsed without errors");
}

/// The quoted strings that follow `marker` in `text` (`-TypeName 'DirSync.X'` and the like).
fn quoted_after(text: &str, marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let tail = &rest[at + marker.len()..];
        if let Some(q) = tail.strip_prefix('\'')
            && let Some(end) = q.find('\'')
        {
            out.push(q[..end].to_string());
        }
        rest = &rest[at + marker.len()..];
    }
    out
}

#[test]
fn output_types_have_views_and_operations_exist() {
    let psm1 = read("powershell/DirSync.psm1");
    let format = read("powershell/DirSync.Format.ps1xml");
    let mut types = quoted_after(&psm1, "-TypeName ");
    types.extend(quoted_after(&psm1, "TypeNames.Insert(0, "));
    types.sort();
    types.dedup();
    assert!(types.len() >= 15, "{types:?}");
    for t in &types {
        assert!(
            format.contains(&format!("<TypeName>{t}</TypeName>")),
            "{t} is emitted by DirSync.psm1 but has no view in DirSync.Format.ps1xml"
        );
    }
    // Every native operation the module calls is mapped to a P/Invoke in DirSync.Native.cs.
    let cs = read("powershell/DirSync.Native.cs");
    let ops = quoted_after(&psm1, "-Operation ");
    assert!(ops.len() >= 20, "{ops:?}");
    for op in ops {
        assert!(
            cs.contains(&format!("{{ \"{op}\", dirsync_{op}_w }}")),
            "DirSync.psm1 calls operation '{op}', which DirSync.Native.cs does not map"
        );
    }
}
