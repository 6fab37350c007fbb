//! Settings that are lists of durations, such as the webhook retry
//! schedule.

use std::time::Duration;

/// Durations such as `5s,5m,2h`: a number and a unit each (`ms`, `s`,
/// `m`, `h`, `d`), separated by commas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durations(pub Vec<Duration>);

impl std::str::FromStr for Durations {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(|part| {
                humantime::parse_duration(part.trim()).map_err(|err| {
                    format!(
                        "{:?} is not a duration such as 30s or 2h: {err}",
                        part.trim()
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Durations)
    }
}

impl Durations {
    /// The first duration, or zero.
    pub fn first(&self) -> Duration {
        self.0.first().copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_comma_separated_list() {
        let d: Durations = "5s, 5m,2h,1d,250ms".parse().unwrap();
        assert_eq!(
            d.0,
            [5, 300, 7200, 86_400]
                .map(Duration::from_secs)
                .into_iter()
                .chain([Duration::from_millis(250)])
                .collect::<Vec<_>>()
        );
        assert_eq!(d.first(), Duration::from_secs(5));
        assert!("5 parsecs".parse::<Durations>().is_err());
        assert_eq!("".parse::<Durations>().unwrap().first(), Duration::ZERO);
    }
}
