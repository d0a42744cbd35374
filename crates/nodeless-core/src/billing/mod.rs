//! Per-second billing and the spot market, as pure functions of recorded facts and
//! explicit times (nothing here reads the clock).
//!
//! - [`money`]: integer nano-units and parts-per-million ratios, decimal text in and out.
//! - [`catalog`]: the price catalogue and the hourly price of an instance spec.
//! - [`market`]: the spot ratio from pool utilisation, and its history.
//! - [`ledger`]: what one instance costs in a window of time.
//! - [`report`]: line items grouped by pod, workload or namespace, rendered for people and tools.
//! - [`spot`]: a Pod's spot policy from its annotations, and their validation.
//! - [`reclaim`]: which spot instances to reclaim, for price or for on-demand capacity.

pub mod catalog;
pub mod ledger;
pub mod market;
pub mod money;
pub mod reclaim;
pub mod report;
pub mod spot;

pub use catalog::{spot_hourly, CatalogError, PriceCatalog, SpotParams};
pub use ledger::{charge, CapacityType, Charge, Usage, Window};
pub use market::{spot_ratio_ppm, utilisation_ppm, PriceHistory, PricePoint};
pub use money::{format_money, format_money_exact, parse_money, MoneyError, NANOS_PER_UNIT, PPM};
pub use reclaim::{over_limit, victims_for, HostRoom, SpotInstance};
pub use report::{Format, GroupBy, LineItem, Report, ReportError, Row};
pub use spot::{
    parse_duration, spot_policy, validate_spot_annotations, SpotError, SpotPolicy, SpotStrategy,
};
