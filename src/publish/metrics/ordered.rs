//! [`Ordered`]: a metric family whose series are encoded in insertion order, so that the
//! exposition is the same from one process to the next (see the parent module's docs).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};

use super::Labels;

/// A gauge holding an `f64`.
pub(super) type F64Gauge = Gauge<f64, AtomicU64>;

/// A metric family whose series are encoded in insertion order (see the module docs).
#[derive(Debug)]
pub struct Ordered<M> {
    series: Vec<(Labels, M)>,
    /// Hashes of the label sets pushed (a linear scan for duplicates was O(n²): 40% of a
    /// render with 40+ controls × 4 statuses; docs/performance.md).
    seen: std::collections::HashSet<u64>,
}

impl<M> Default for Ordered<M> {
    fn default() -> Self {
        Ordered {
            series: Vec::new(),
            seen: std::collections::HashSet::new(),
        }
    }
}

fn labels_hash(labels: &Labels) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

impl<M> Ordered<M> {
    /// Add a series. A label set already present is ignored (the first one wins), so the
    /// exposition never holds duplicate series.
    pub fn push(&mut self, labels: Labels, metric: M) {
        let h = labels_hash(&labels);
        // A hash seen before is confirmed by comparing the label sets (collisions are
        // possible, if unlikely): a distinct series is never dropped.
        if !self.seen.insert(h) && self.series.iter().any(|(l, _)| *l == labels) {
            return;
        }
        self.series.push((labels, metric));
    }

    /// How many distinct series are held.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is held.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

impl Ordered<F64Gauge> {
    /// Add a gauge series with a value.
    pub fn gauge(&mut self, labels: Labels, value: f64) {
        let g = F64Gauge::default();
        g.set(value);
        self.push(labels, g);
    }
}

impl Ordered<Counter<u64>> {
    /// Add a counter series with a value.
    pub fn counter(&mut self, labels: Labels, value: u64) {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        self.push(labels, c);
    }
}

impl Ordered<Info<Labels>> {
    /// Add an info series (value 1).
    pub fn info(&mut self, labels: Labels) {
        self.push(labels, Info::new(Vec::new()));
    }
}

impl<M> EncodeMetric for Ordered<M>
where
    M: EncodeMetric + TypedMetric,
{
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, metric) in &self.series {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }

    /// Empty families are left out of the exposition entirely (no orphan `# HELP`).
    fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

pub(super) fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}
