//! The allowed instance shapes (ECI's table) and rounding a need up to one of them.

use super::{InstanceSpec, SpecError, MIB, MIB_PER_GIB};

/// The memory sizes one vCPU count allows, in MiB.
enum Memory {
    /// Exactly these sizes (the small shapes).
    Choices(&'static [u64]),
    /// Every whole GiB from `min` to `max`, inclusive.
    Range { min: u64, max: u64 },
}

const fn gib(n: u64) -> u64 {
    n * MIB_PER_GIB
}

const fn range(min_gib: u64, max_gib: u64) -> Memory {
    Memory::Range {
        min: gib(min_gib),
        max: gib(max_gib),
    }
}

/// vCPU (in millicores) → memory, ascending by vCPU, as ECI publishes it.
const TABLE: &[(u64, Memory)] = &[
    (250, Memory::Choices(&[512, gib(1)])),
    (500, Memory::Choices(&[gib(1), gib(2)])),
    (1000, Memory::Choices(&[gib(2), gib(4), gib(8)])),
    (2000, range(1, 16)),
    (4000, range(2, 32)),
    (8000, range(4, 64)),
    (12000, range(12, 96)),
    (16000, range(16, 128)),
    (24000, range(24, 192)),
    (32000, range(32, 256)),
    (52000, range(96, 384)),
    (64000, range(128, 512)),
];

impl Memory {
    /// The smallest allowed size of at least `mib`.
    fn smallest_at_least(&self, mib: u64) -> Option<u64> {
        match *self {
            Memory::Choices(sizes) => sizes.iter().copied().find(|&s| s >= mib),
            Memory::Range { min, max } => {
                let whole = mib.div_ceil(MIB_PER_GIB).saturating_mul(MIB_PER_GIB);
                Some(whole.max(min)).filter(|&s| s <= max)
            }
        }
    }

    fn allows(&self, mib: u64) -> bool {
        match *self {
            Memory::Choices(sizes) => sizes.contains(&mib),
            Memory::Range { min, max } => {
                (min..=max).contains(&mib) && mib.is_multiple_of(MIB_PER_GIB)
            }
        }
    }
}

/// The smallest allowed spec with at least `cpu_millis` of vCPU and `mem_bytes` of memory.
///
/// Among the shapes that fit, the one with the fewest vCPUs wins, then the least memory:
/// 1 vCPU with 1 GiB becomes `1-2Gi`, not `2-1Gi`, and 1 vCPU with 9 GiB becomes `2-9Gi`.
/// As a vCPU is priced at several times a GiB, that is also the cheapest fit. 7 vCPU with
/// 13 GiB becomes `8-13Gi` (ECI, whose regional shapes step by 2 GiB, gives `8-14Gi`). A
/// need beyond the largest shapes (64 vCPU, 512 GiB) is an error.
pub fn round_up(cpu_millis: u64, mem_bytes: u64) -> Result<InstanceSpec, SpecError> {
    let mem_mib = mem_bytes.div_ceil(MIB);
    TABLE
        .iter()
        .filter(|(millicpu, _)| *millicpu >= cpu_millis)
        .find_map(|(millicpu, memory)| {
            let mib = memory.smallest_at_least(mem_mib)?;
            Some(InstanceSpec::new(*millicpu, mib))
        })
        .ok_or(SpecError::TooLarge {
            millicpu: cpu_millis,
            memory_bytes: mem_bytes,
        })
}

/// Whether the spec's vCPU and memory are exactly one of the allowed shapes.
pub fn is_allowed(spec: &InstanceSpec) -> bool {
    TABLE
        .iter()
        .any(|(millicpu, memory)| *millicpu == spec.millicpu && memory.allows(spec.memory_mib))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * MIB;

    fn rounded(millicpu: u64, mem_bytes: u64) -> String {
        round_up(millicpu, mem_bytes).expect("fits").to_string()
    }

    #[test]
    fn seven_vcpu_and_13_gib_round_to_8_vcpu_keeping_13_gib() {
        // ECI's own example gives 8-14Gi: its regional table steps by 2 GiB. Ours steps by
        // whole GiB (product.md), so 13 GiB is already a size 8 vCPU allow.
        assert_eq!(rounded(7000, 13 * GIB), "8-13Gi");
    }

    #[test]
    fn an_exact_table_entry_is_kept() {
        for s in [
            "0.25-0.5Gi",
            "0.5-2Gi",
            "1-8Gi",
            "2-1Gi",
            "2-16Gi",
            "52-96Gi",
            "64-512Gi",
        ] {
            let spec: InstanceSpec = s.parse().expect("spec");
            assert!(is_allowed(&spec), "{s}");
            assert_eq!(
                round_up(spec.millicpu, spec.memory_bytes()).expect("fits"),
                spec
            );
        }
    }

    #[test]
    fn nothing_asked_gets_the_smallest_shape() {
        assert_eq!(rounded(0, 0), "0.25-0.5Gi");
        assert_eq!(rounded(1, 1), "0.25-0.5Gi");
    }

    #[test]
    fn small_shapes_only_offer_their_listed_memory() {
        assert_eq!(rounded(250, 600 * MIB), "0.25-1Gi");
        assert_eq!(rounded(250, GIB + 1), "0.5-2Gi");
        assert_eq!(rounded(250, 3 * GIB), "1-4Gi");
        assert_eq!(rounded(1000, 5 * GIB), "1-8Gi");
        assert_eq!(rounded(1000, GIB), "1-2Gi");
        assert_eq!(rounded(1000, 8 * GIB + 1), "2-9Gi");
        assert_eq!(rounded(251, 0), "0.5-1Gi");
    }

    #[test]
    fn ranges_round_memory_up_to_a_whole_gib_and_to_their_minimum() {
        assert_eq!(rounded(2000, 1), "2-1Gi");
        assert_eq!(rounded(1500, 2 * GIB + 1), "2-3Gi");
        assert_eq!(rounded(3000, 0), "4-2Gi");
        assert_eq!(rounded(9000, GIB), "12-12Gi");
        assert_eq!(rounded(40000, 40 * GIB), "52-96Gi");
        assert_eq!(rounded(33000, 385 * GIB), "64-385Gi");
    }

    #[test]
    fn the_fewest_vcpus_win_over_less_memory() {
        // 2 vCPU allow up to 16 GiB; 17 GiB needs 4 vCPU even though 2 were asked.
        assert_eq!(rounded(2000, 17 * GIB), "4-17Gi");
        assert_eq!(rounded(500, 96 * GIB), "12-96Gi");
        assert_eq!(rounded(500, 97 * GIB), "16-97Gi");
        assert_eq!(rounded(0, 512 * GIB), "64-512Gi");
    }

    #[test]
    fn needs_beyond_the_table_are_refused() {
        assert!(matches!(
            round_up(64001, 0),
            Err(SpecError::TooLarge { .. })
        ));
        assert!(matches!(
            round_up(0, 512 * GIB + 1),
            Err(SpecError::TooLarge { .. })
        ));
        assert!(matches!(
            round_up(u64::MAX, u64::MAX),
            Err(SpecError::TooLarge { .. })
        ));
    }

    #[test]
    fn shapes_outside_the_table_are_not_allowed() {
        for (millicpu, mib) in [
            (3000, 4096),
            (2000, 1536),
            (250, 2048),
            (52000, 95 * 1024),
            (64000, 513 * 1024),
        ] {
            assert!(
                !is_allowed(&InstanceSpec::new(millicpu, mib)),
                "{millicpu} {mib}"
            );
        }
    }
}
