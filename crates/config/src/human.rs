//! Wording for people: durations rounded to what a reader needs (`1h 0m`, `2m 5s`, `850ms`).

use std::time::Duration;

/// A duration rounded for a person: `850ms` under a second, `4.2s` under ten seconds, `45s`
/// under a minute, `2m 5s` under an hour, `1h 0m` under a day, `2d 3h` beyond. Never the
/// nanosecond digits of `Debug`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    if ms < 10_000 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let secs = (ms + 500) / 1_000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m {}s", secs / 60, secs % 60),
        3_600..86_400 => {
            let mins = (secs + 30) / 60;
            format!("{}h {}m", mins / 60, mins % 60)
        }
        _ => {
            let hours = (secs + 1_800) / 3_600;
            format!("{}d {}h", hours / 24, hours % 24)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounded_for_people() {
        let table = [
            (Duration::from_millis(0), "0ms"),
            (Duration::from_millis(850), "850ms"),
            (Duration::from_millis(4_249), "4.2s"),
            (Duration::from_secs(45), "45s"),
            (Duration::from_secs(125), "2m 5s"),
            (Duration::from_secs_f64(3600.318599353), "1h 0m"),
            (Duration::from_secs(5_399), "1h 30m"),
            (Duration::from_secs(86_400 * 2 + 3_600 * 3), "2d 3h"),
        ];
        for (d, want) in table {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }
}
