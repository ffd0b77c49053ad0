//! A TTL report on the peer link (`meridianpb.CheckReport`) and back.

use meridian_proto::meridianpb::{CheckOutcome, CheckReport};
use meridian_registry::keys::check_key;
use meridian_registry::{CheckId, CheckRecord, CheckRef, InstanceId, InstanceRef, NodeName, Outcome, ServiceName};

use super::core::TtlReport;

/// The wire form of `report`.
pub fn to_wire(report: &TtlReport) -> CheckReport {
    let r = &report.check.instance;
    let outcome = match report.outcome {
        Outcome::Pass => CheckOutcome::CheckPass,
        Outcome::Warn => CheckOutcome::CheckWarn,
        Outcome::Fail => CheckOutcome::CheckFail,
    };
    CheckReport {
        service: r.service.as_str().to_owned(),
        node: r.node.as_str().to_owned(),
        instance: r.id.as_str().to_owned(),
        check: report.check.check.as_str().to_owned(),
        outcome: outcome as i32,
        output: report.output.clone(),
        record: report.committed.as_ref().map_or_else(Vec::new, |(record, _)| record.encode()),
        record_revision: report.committed.as_ref().map_or(0, |(_, revision)| *revision),
    }
}

/// The report a wire message carries; an error names what does not parse.
pub fn from_wire(wire: &CheckReport) -> Result<TtlReport, String> {
    let bad = |what: &str, e: meridian_registry::Error| format!("{what}: {}", e.message());
    let instance = InstanceRef {
        service: ServiceName::new(wire.service.clone()).map_err(|e| bad("service", e))?,
        node: NodeName::new(wire.node.clone()).map_err(|e| bad("node", e))?,
        id: InstanceId::new(wire.instance.clone()).map_err(|e| bad("instance", e))?,
    };
    let check = CheckId::new(wire.check.clone()).map_err(|e| bad("check", e))?;
    let outcome = match CheckOutcome::try_from(wire.outcome) {
        Ok(CheckOutcome::CheckPass) => Outcome::Pass,
        Ok(CheckOutcome::CheckWarn) => Outcome::Warn,
        Ok(CheckOutcome::CheckFail) => Outcome::Fail,
        Err(_) => return Err(format!("outcome: unknown value {}", wire.outcome)),
    };
    let check = CheckRef { instance, check };
    let committed = match wire.record_revision {
        0 => None,
        revision => {
            let record = CheckRecord::decode(&check_key(&check), &wire.record).map_err(|e| bad("record", e))?;
            Some((record, revision))
        }
    };
    Ok(TtlReport { check, outcome, output: wire.output.clone(), committed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_bad_ones_are_refused() {
        let report = TtlReport {
            check: CheckRef {
                instance: InstanceRef {
                    service: ServiceName::new("web").unwrap(),
                    node: NodeName::new("m1").unwrap(),
                    id: InstanceId::new("web-1").unwrap(),
                },
                check: CheckId::new("service:web-1").unwrap(),
            },
            outcome: Outcome::Warn,
            output: "slow".into(),
            committed: None,
        };
        assert_eq!(from_wire(&to_wire(&report)).unwrap(), report);
        let record = CheckRecord {
            status: meridian_registry::Status::Critical,
            output: "down".into(),
            since: meridian_registry::Timestamp(5),
        };
        let with_record = TtlReport { committed: Some((record, 42)), ..report.clone() };
        assert_eq!(from_wire(&to_wire(&with_record)).unwrap(), with_record);
        let mut bad = to_wire(&report);
        bad.outcome = 7;
        assert!(from_wire(&bad).unwrap_err().contains("outcome"));
        let mut bad = to_wire(&report);
        bad.service = String::new();
        assert!(from_wire(&bad).unwrap_err().starts_with("service"));
    }
}
