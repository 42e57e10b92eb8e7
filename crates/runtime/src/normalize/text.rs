//! Plain text output (a `command` backend with `format = "text"`): success is the exit code,
//! the final message is the last non-empty lines, and the cost is unknown.

use std::collections::VecDeque;

use super::{Verdict, bounded};

/// Lines of the final message kept.
const LINES_KEPT: usize = 40;
/// Bytes of one kept line.
const LINE_LIMIT: usize = 2048;

#[derive(Default)]
pub(crate) struct State {
    last: VecDeque<String>,
}

impl State {
    pub fn line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        if self.last.len() == LINES_KEPT {
            self.last.pop_front();
        }
        self.last.push_back(bounded(line.trim_end(), LINE_LIMIT));
    }

    pub fn verdict(&self) -> Verdict {
        let text = Vec::from(self.last.clone()).join("\n");
        let tail: Vec<&String> = self.last.iter().rev().take(5).collect();
        let hint = (!tail.is_empty()).then(|| {
            tail.into_iter()
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        });
        Verdict {
            hint,
            final_message: text,
            self_reported: false,
            ..Verdict::completed()
        }
    }
}
