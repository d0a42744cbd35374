use super::*;

fn spec(s: &str) -> InstanceSpec {
    s.parse().expect("valid spec")
}

fn gpu_spec(gpu: u32, gpu_type: Option<&str>) -> InstanceSpec {
    InstanceSpec {
        gpu,
        gpu_type: gpu_type.map(str::to_string),
        ..spec("4-16Gi")
    }
}

fn parse_err(text: &str) -> String {
    PriceCatalog::from_yaml(text).expect_err(text).to_string()
}

#[test]
fn defaults_are_fargate_list_prices() {
    let c = PriceCatalog::default();
    assert_eq!(c.currency, "USD");
    assert_eq!(c.vcpu_hour, 40_480_000);
    assert_eq!(c.memory_gib_hour, 4_445_000);
    assert_eq!(c.gpu_hour["default"], 526_000_000);
    assert_eq!(c.gpu_hour["nvidia-a100"], 3_000_000_000);
    assert_eq!(
        c.spot,
        SpotParams {
            floor_ppm: 100_000,
            knee_ppm: 500_000
        }
    );
}

#[test]
fn an_empty_file_is_the_default_catalogue() {
    assert_eq!(
        PriceCatalog::from_yaml("").expect("empty"),
        PriceCatalog::default()
    );
    assert_eq!(
        PriceCatalog::from_yaml("{}").expect("{}"),
        PriceCatalog::default()
    );
}

#[test]
fn missing_keys_keep_their_defaults() {
    let c = PriceCatalog::from_yaml("onDemand:\n  vcpuHour: 0.05\n").expect("valid");
    assert_eq!(c.vcpu_hour, 50_000_000);
    assert_eq!(c.memory_gib_hour, 4_445_000);
    assert_eq!(c.spot, SpotParams::default());
    assert_eq!(c.gpu_hour, PriceCatalog::default().gpu_hour);
}

#[test]
fn prices_are_read_exactly_from_numbers_and_strings() {
    let c = PriceCatalog::from_yaml(
        "currency: EUR\nonDemand:\n  vcpuHour: 0.123456789\n  memoryGiBHour: \"0.004445\"\n  gpuHour: {nvidia-h100: 7, default: '0.5'}\nspot: {floor: 0.05, knee: 0.75}\n",
    )
    .expect("valid");
    assert_eq!(c.currency, "EUR");
    assert_eq!(c.vcpu_hour, 123_456_789);
    assert_eq!(c.memory_gib_hour, 4_445_000);
    assert_eq!(c.gpu_hour.len(), 2, "a gpuHour map replaces the defaults");
    assert_eq!(c.gpu_hour["nvidia-h100"], 7_000_000_000);
    assert_eq!(c.gpu_hour["default"], 500_000_000);
    assert_eq!(
        c.spot,
        SpotParams {
            floor_ppm: 50_000,
            knee_ppm: 750_000
        }
    );
}

#[test]
fn json_catalogues_are_read_too() {
    let c = PriceCatalog::from_yaml(r#"{"onDemand": {"vcpuHour": 0.04}, "spot": {"floor": 1}}"#)
        .expect("valid");
    assert_eq!(c.vcpu_hour, 40_000_000);
    assert_eq!(c.spot.floor_ppm, 1_000_000);
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    assert!(parse_err("currncy: USD").contains("currncy"));
    assert!(parse_err("onDemand: {cpuHour: 1}").contains("cpuHour"));
    assert!(parse_err("spot: {ceiling: 1}").contains("ceiling"));
}

#[test]
fn bad_prices_are_errors_naming_the_key() {
    let cases = [
        (
            "onDemand: {vcpuHour: -0.1}",
            "onDemand.vcpuHour",
            "negative",
        ),
        (
            "onDemand: {vcpuHour: .nan}",
            "onDemand.vcpuHour",
            "not a decimal",
        ),
        (
            "onDemand: {memoryGiBHour: .inf}",
            "onDemand.memoryGiBHour",
            "not a decimal",
        ),
        (
            "onDemand: {memoryGiBHour: cheap}",
            "onDemand.memoryGiBHour",
            "not a decimal",
        ),
        (
            "onDemand: {vcpuHour: 0.0000000001}",
            "onDemand.vcpuHour",
            "more than 9 decimals",
        ),
        (
            "onDemand: {vcpuHour: [1]}",
            "onDemand.vcpuHour",
            "expected a number",
        ),
        (
            "onDemand: {gpuHour: {t4: -1}}",
            "onDemand.gpuHour.t4",
            "negative",
        ),
        ("spot: {floor: 1.5}", "spot.floor", "at most 1"),
        ("spot: {knee: 1}", "spot.knee", "less than 1"),
        ("spot: {knee: -0.5}", "spot.knee", "negative"),
        (
            "spot: {floor: 0.1234567}",
            "spot.floor",
            "more than 6 decimals",
        ),
    ];
    for (text, key, reason) in cases {
        let err = parse_err(text);
        assert!(err.contains(key) && err.contains(reason), "{text}: {err}");
    }
    assert!(parse_err("currency: ' '").contains("currency must not be empty"));
    assert!(parse_err("onDemand: 3").contains("invalid price catalogue"));
}

#[test]
fn to_yaml_round_trips() {
    let mut c = PriceCatalog::default();
    assert_eq!(PriceCatalog::from_yaml(&c.to_yaml()).expect("default"), c);
    c.currency = "true".into();
    c.gpu_hour.insert("no".into(), 1);
    c.gpu_hour.insert("1x: weird".into(), 123_456_789_012);
    c.spot = SpotParams {
        floor_ppm: 0,
        knee_ppm: 999_999,
    };
    assert_eq!(PriceCatalog::from_yaml(&c.to_yaml()).expect("odd names"), c);
    c.gpu_hour.clear();
    assert_eq!(PriceCatalog::from_yaml(&c.to_yaml()).expect("no gpus"), c);
}

#[test]
fn to_yaml_writes_plain_decimals() {
    let text = PriceCatalog::default().to_yaml();
    assert!(text.contains("  vcpuHour: 0.04048\n"), "{text}");
    assert!(text.contains("    nvidia-a10: 1.2\n"), "{text}");
    assert!(text.contains("  floor: 0.1\n  knee: 0.5\n"), "{text}");
}

#[test]
fn on_demand_price_sums_vcpu_and_memory() {
    let c = PriceCatalog::default();
    // 0.25 × 0.04048 + 0.5 × 0.004445 = 0.0123425
    assert_eq!(
        c.hourly_on_demand(&spec("0.25-0.5Gi")).expect("price"),
        12_342_500
    );
    // 2 × 0.04048 + 4 × 0.004445 = 0.09874
    assert_eq!(
        c.hourly_on_demand(&spec("2-4Gi")).expect("price"),
        98_740_000
    );
    // 100 MiB: 0.004445 × 100 / 1024 = 0.000434082..., rounded to the nano.
    assert_eq!(
        c.hourly_on_demand(&spec("1-100Mi")).expect("price"),
        40_480_000 + 434_082
    );
}

#[test]
fn gpus_are_priced_by_type_or_the_default() {
    let c = PriceCatalog::default();
    let base = c.hourly_on_demand(&spec("4-16Gi")).expect("price");
    let untyped = c.hourly_on_demand(&gpu_spec(2, None)).expect("price");
    assert_eq!(untyped, base + 2 * 526_000_000);
    let a100 = c
        .hourly_on_demand(&gpu_spec(1, Some("nvidia-a100")))
        .expect("price");
    assert_eq!(a100, base + 3_000_000_000);
    // A type is ignored when no GPU is asked for.
    assert_eq!(
        c.hourly_on_demand(&gpu_spec(0, Some("nope")))
            .expect("price"),
        base
    );
}

#[test]
fn an_unknown_gpu_type_names_the_known_ones() {
    let err = PriceCatalog::default()
        .hourly_on_demand(&gpu_spec(1, Some("nvidia-h100")))
        .expect_err("unknown")
        .to_string();
    assert_eq!(
        err,
        "no price for GPU type \"nvidia-h100\": the catalogue prices default, nvidia-a10, nvidia-a100, nvidia-t4"
    );
}

#[test]
fn spot_price_is_the_ratio_of_on_demand() {
    let c = PriceCatalog::default();
    let s = spec("2-4Gi");
    assert_eq!(c.hourly_spot(&s, 1_000_000).expect("price"), 98_740_000);
    assert_eq!(c.hourly_spot(&s, 100_000).expect("price"), 9_874_000);
    assert_eq!(c.hourly_spot(&s, 0).expect("price"), 0);
    assert_eq!(spot_hourly(3, 500_000), 2, "rounded half up");
}
