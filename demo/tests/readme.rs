//! The README shows code and options; these keep it from drifting away from the source.

use std::fs;
use std::path::Path;

use clap::CommandFactory;
use webhook_demo::orchestrator::Args;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn the_readme_shows_the_dedup_handler_as_it_is_in_the_source() {
    let source = read("src/receiver/handler.rs");
    let start = source.find("pub async fn deduplicated(").expect("the handler exists");
    let end = start + source[start..].find("\n}\n").expect("the handler ends") + 2;
    let handler = &source[start..end];
    assert!(read("README.md").contains(handler), "README.md must show this handler verbatim:\n{handler}");
}

#[test]
fn the_readme_lists_every_option_with_its_variable() {
    let readme = read("README.md");
    for arg in Args::command().get_arguments() {
        let Some(long) = arg.get_long().filter(|long| !["help", "version"].contains(long)) else { continue };
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| `--{long}")))
            .unwrap_or_else(|| panic!("README.md has no row for --{long}"));
        let env = arg.get_env().expect("every option has a variable").to_string_lossy().into_owned();
        assert!(row.contains(&format!("`{env}`")), "the --{long} row does not name {env}: {row}");
    }
}
