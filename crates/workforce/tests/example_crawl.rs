//! The `crawl` example, run against its own site: the crawl started from the
//! front page reaches every page, each page is requested exactly once
//! (the example checks that against the server's counts and fails
//! otherwise), every page but the front one was spawned by a worker, and
//! the counts agree with the site's rule, also with one worker and a
//! capacity of one, where spawns go over the capacity.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

// The helpers are `pub` for every test crate that includes them.
#[allow(unreachable_pub)]
mod common;

use std::collections::BTreeMap;

use rstest::rstest;

/// The links on page `page` of a site of `n_pages` (the example's rule).
fn n_links(page: u64, n_pages: u64) -> u64 {
    let children = (1..=3).filter(|k| 3 * page + k < n_pages).count() as u64;
    let parent = u64::from(page > 0);
    children + parent + 2
}

/// The `key=value` pairs of the summary line.
fn summary(lines: &[String]) -> BTreeMap<String, String> {
    let line = lines
        .iter()
        .find(|line| line.starts_with("crawled "))
        .unwrap_or_else(|| panic!("no summary line in {lines:#?}"));
    line.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

#[rstest]
#[case::one_worker_capacity_one(400, 1, 1)]
#[case::many_workers(3_000, 6, 64)]
fn every_page_is_fetched_exactly_once(
    #[case] n_pages: u64,
    #[case] n_workers: usize,
    #[case] capacity: usize,
) {
    let mut command = common::example("crawl");
    command.args(["--pages", &n_pages.to_string()]);
    command.args(["--workers", &n_workers.to_string()]);
    command.args(["--capacity", &capacity.to_string()]);
    let lines = common::stdout_lines(&common::run_ok(command));
    let summary = summary(&lines);
    let number = |key: &str| -> u64 { summary[key].parse().unwrap() };
    assert_eq!(number("pages"), n_pages);
    assert_eq!(number("fetched"), n_pages);
    assert_eq!(number("spawned"), n_pages - 1);
    assert_eq!(number("server_requests"), n_pages);
    assert_eq!(summary["each_page_once"], "yes");
    let links: u64 = (0..n_pages).map(|page| n_links(page, n_pages)).sum();
    assert_eq!(number("links"), links);
    assert!(number("bytes") > 0);
}

#[test]
fn an_unknown_flag_is_refused_by_name() {
    let mut command = common::example("crawl");
    command.args(["--page", "5"]);
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown flag \"--page\""), "{stderr}");
}
