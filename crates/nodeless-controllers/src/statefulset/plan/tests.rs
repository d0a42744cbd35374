use super::*;

fn shape(replicas: i32, ordered: bool, partition: Option<i32>) -> Shape {
    Shape {
        replicas,
        start: 0,
        ordered,
        partition,
        current_revision: "web-old".into(),
        update_revision: "web-new".into(),
    }
}

fn member(ordinal: i32, revision: &str, ready: bool) -> (i32, Member) {
    let m = Member {
        name: format!("web-{ordinal}"),
        revision: revision.into(),
        finished: false,
        terminating: false,
        ready,
        available: ready,
    };
    (ordinal, m)
}

fn pods(members: &[(i32, Member)]) -> BTreeMap<i32, Member> {
    members.iter().cloned().collect()
}

fn create(ordinal: i32, revision: &str) -> Step {
    Step::Create {
        ordinal,
        revision: revision.into(),
    }
}

fn delete(name: &str) -> Step {
    Step::Delete { name: name.into() }
}

#[test]
fn ordered_ready_creates_one_pod_at_a_time_each_after_the_previous_is_ready() {
    let s = shape(3, true, Some(0));
    assert_eq!(plan(&s, &pods(&[])), vec![create(0, "web-new")]);
    assert_eq!(plan(&s, &pods(&[member(0, "web-new", false)])), vec![]);
    assert_eq!(
        plan(&s, &pods(&[member(0, "web-new", true)])),
        vec![create(1, "web-new")]
    );
}

#[test]
fn parallel_creates_every_missing_pod_at_once() {
    let s = shape(3, false, Some(0));
    assert_eq!(
        plan(&s, &pods(&[member(1, "web-new", false)])),
        vec![create(0, "web-new"), create(2, "web-new")]
    );
}

#[test]
fn a_failed_pod_is_deleted_to_be_recreated_under_its_name() {
    let s = shape(2, true, Some(0));
    let mut failed = member(0, "web-new", false);
    failed.1.finished = true;
    assert_eq!(plan(&s, &pods(&[failed.clone()])), vec![delete("web-0")]);
    failed.1.terminating = true;
    assert_eq!(plan(&s, &pods(&[failed])), vec![], "waits for the deletion");
}

#[test]
fn scale_down_removes_the_highest_ordinal_first_one_at_a_time() {
    let s = shape(1, true, Some(0));
    let all = pods(&[
        member(0, "web-new", true),
        member(1, "web-new", true),
        member(2, "web-new", true),
    ]);
    assert_eq!(plan(&s, &all), vec![delete("web-2")]);
    let parallel = shape(1, false, Some(0));
    assert_eq!(
        plan(&parallel, &all),
        vec![delete("web-2"), delete("web-1")]
    );
}

#[test]
fn ordered_scale_down_waits_while_a_lower_pod_is_unhealthy() {
    let s = shape(1, true, Some(0));
    let all = pods(&[
        member(0, "web-new", true),
        member(1, "web-new", false),
        member(2, "web-new", true),
    ]);
    // web-2 is healthy: it goes first. Then web-1, the first unhealthy one, may go too.
    assert_eq!(plan(&s, &all), vec![delete("web-2")]);
    let rest = pods(&[member(0, "web-new", true), member(1, "web-new", false)]);
    assert_eq!(plan(&s, &rest), vec![delete("web-1")]);
    let blocked = pods(&[member(0, "web-new", false), member(1, "web-new", true)]);
    assert_eq!(plan(&s, &blocked), vec![], "web-0 must be ready first");
}

#[test]
fn a_rolling_update_goes_from_the_highest_ordinal_down_one_ready_pod_at_a_time() {
    let s = shape(3, true, Some(0));
    let old = pods(&[
        member(0, "web-old", true),
        member(1, "web-old", true),
        member(2, "web-old", true),
    ]);
    assert_eq!(plan(&s, &old), vec![delete("web-2")]);
    let mut missing = old.clone();
    missing.remove(&2);
    assert_eq!(plan(&s, &missing), vec![create(2, "web-new")]);
    let mut unready = old.clone();
    unready.insert(2, member(2, "web-new", false).1);
    assert_eq!(plan(&s, &unready), vec![], "waits for web-2 to be ready");
    let mut ready = old;
    ready.insert(2, member(2, "web-new", true).1);
    assert_eq!(plan(&s, &ready), vec![delete("web-1")]);
}

#[test]
fn the_partition_keeps_lower_ordinals_at_the_current_revision() {
    let s = shape(3, true, Some(2));
    let mixed = pods(&[
        member(0, "web-old", true),
        member(1, "web-old", true),
        member(2, "web-new", true),
    ]);
    assert_eq!(
        plan(&s, &mixed),
        vec![],
        "nothing below the partition is updated"
    );
    let mut lost = mixed;
    lost.remove(&1);
    assert_eq!(
        plan(&s, &lost),
        vec![create(1, "web-old")],
        "a Pod below the partition is recreated at the current revision"
    );
}

#[test]
fn on_delete_never_deletes_for_an_update_but_new_pods_get_the_update() {
    let s = shape(2, true, None);
    let old = pods(&[member(0, "web-old", true)]);
    assert_eq!(plan(&s, &old), vec![create(1, "web-new")]);
    let both = pods(&[member(0, "web-old", true), member(1, "web-old", true)]);
    assert_eq!(plan(&s, &both), vec![]);
}

#[test]
fn status_counts_revisions_and_completes_the_rollout_when_all_are_updated_and_ready() {
    let s = shape(2, true, Some(0));
    let mixed = pods(&[member(0, "web-old", true), member(1, "web-new", false)]);
    let c = counts(&s, &mixed);
    assert_eq!((c.replicas, c.ready, c.current, c.updated), (2, 1, 1, 1));
    assert_eq!(c.current_revision, "web-old");
    let done = pods(&[member(0, "web-new", true), member(1, "web-new", true)]);
    let c = counts(&s, &done);
    assert_eq!((c.current, c.updated), (2, 2));
    assert_eq!(c.current_revision, "web-new");
}

#[test]
fn ordinals_come_from_names_of_the_form_set_dash_number() {
    assert_eq!(ordinal_of("web", "web-0"), Some(0));
    assert_eq!(ordinal_of("web", "web-12"), Some(12));
    assert_eq!(ordinal_of("web", "web-01"), None);
    assert_eq!(ordinal_of("web", "web-x"), None);
    assert_eq!(ordinal_of("web", "webby-1"), None);
    assert_eq!(ordinal_of("web", "web--1"), None);
    assert_eq!(ordinal_of("my-web", "my-web-3"), Some(3));
}

#[test]
fn a_start_ordinal_shifts_every_ordinal() {
    let mut s = shape(2, false, Some(1));
    s.start = 5;
    assert_eq!(
        plan(&s, &pods(&[])),
        vec![create(5, "web-old"), create(6, "web-new")]
    );
}
