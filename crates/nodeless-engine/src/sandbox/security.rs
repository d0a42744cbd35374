//! The default security profile every container gets, modelled on containerd's defaults:
//! a small capability set, masked and read-only kernel paths and a seccomp filter.
//!
//! The seccomp profile is a deny-list (default allow, then EPERM for the syscalls that let
//! a process reach the kernel's global state or escape its namespaces). It is far shorter
//! than Docker's allow-list and cannot break a workload by missing a new syscall; what
//! it blocks is what Docker's profile blocks for a container without extra capabilities.

use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxSeccomp,
    LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator,
    LinuxSyscall, LinuxSyscallBuilder,
};

/// containerd's default capability set for unprivileged containers.
pub const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Syscalls that only a privileged process needs: kernel modules, clocks, mounts, keyrings,
/// tracing other processes, new namespaces, BPF and perf.
const DENIED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "_sysctl",
    "sysfs",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// clone(2) flags that create namespaces; a container may fork and spawn threads but not nest.
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// The capability set for a container, after the spec's `add` and `drop` lists ("ALL" drops everything).
pub fn capabilities(add: &[String], drop: &[String]) -> Result<LinuxCapabilities, SecurityError> {
    let mut set: Capabilities = DEFAULT_CAPABILITIES.iter().copied().collect();
    for name in drop {
        if name.eq_ignore_ascii_case("ALL") {
            set.clear();
        } else {
            set.remove(&parse_capability(name)?);
        }
    }
    for name in add {
        set.insert(parse_capability(name)?);
    }
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        // Nothing inheritable or ambient: a non-root process must not gain capabilities by
        // exec (the builder's defaults would give it three).
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .map_err(|e| SecurityError::Build(e.to_string()))
}

/// Accepts `NET_ADMIN` (Kubernetes' spelling) and `CAP_NET_ADMIN`.
pub fn parse_capability(name: &str) -> Result<Capability, SecurityError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value(serde_json::Value::String(full))
        .map_err(|_| SecurityError::UnknownCapability(name.to_string()))
}

/// The default seccomp filter.
pub fn default_seccomp() -> Result<LinuxSeccomp, SecurityError> {
    let build = |e: oci_spec::OciSpecError| SecurityError::Build(e.to_string());
    let mut syscalls: Vec<LinuxSyscall> = vec![LinuxSyscallBuilder::default()
        .names(
            DENIED_SYSCALLS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(EPERM)
        .build()
        .map_err(build)?];
    // clone3 passes its flags in memory that seccomp cannot inspect; ENOSYS makes libc fall back
    // to clone, whose flags we can check.
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(vec!["clone3".to_string()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(ENOSYS)
            .build()
            .map_err(build)?,
    );
    for flag in CLONE_NAMESPACE_FLAGS {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(*flag)
            .value_two(*flag)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()
            .map_err(build)?;
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(EPERM)
                .args(vec![arg])
                .build()
                .map_err(build)?,
        );
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(host_architectures())
        .syscalls(syscalls)
        .build()
        .map_err(build)
}

/// The host's architecture and the compat ones its kernel also runs, as Docker's profile lists them.
fn host_architectures() -> Vec<Arch> {
    if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("could not build the security profile: {0}")]
    Build(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_capabilities_exclude_sys_admin() {
        let caps = capabilities(&[], &[]).expect("builds");
        let bounding = caps.bounding().as_ref().expect("bounding set");
        assert_eq!(bounding.len(), DEFAULT_CAPABILITIES.len());
        assert!(!bounding.contains(&Capability::SysAdmin));
    }

    #[test]
    fn no_capability_is_inheritable_or_ambient() {
        let caps = capabilities(&["NET_ADMIN".into()], &[]).expect("builds");
        assert!(caps.inheritable().as_ref().is_some_and(|c| c.is_empty()));
        assert!(caps.ambient().as_ref().is_some_and(|c| c.is_empty()));
    }

    #[test]
    fn capabilities_drop_all_then_add_one_leaves_only_that_one() {
        let caps = capabilities(&["NET_ADMIN".into()], &["ALL".into()]).expect("builds");
        let bounding = caps.bounding().as_ref().expect("bounding set");
        assert_eq!(
            bounding.iter().collect::<Vec<_>>(),
            vec![&Capability::NetAdmin]
        );
    }

    #[test]
    fn unknown_capability_is_an_error() {
        assert!(matches!(
            capabilities(&["FLY".into()], &[]),
            Err(SecurityError::UnknownCapability(_))
        ));
    }

    #[test]
    fn seccomp_profile_serializes_masked_clone_rules_in_runc_form() {
        let json = serde_json::to_value(default_seccomp().expect("builds")).expect("serializes");
        assert_eq!(json["defaultAction"], "SCMP_ACT_ALLOW");
        let rules = json["syscalls"].as_array().expect("rules");
        let clone_rule = rules
            .iter()
            .find(|r| r["names"][0] == "clone")
            .expect("clone rule");
        assert_eq!(clone_rule["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert!(rules[0]["names"]
            .as_array()
            .expect("names")
            .iter()
            .any(|n| n == "mount"));
    }
}
