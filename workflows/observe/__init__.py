"""Read-back: status, the range summary and report, verify and gc."""
