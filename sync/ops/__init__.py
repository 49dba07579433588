"""Operations: the daemon, systemd notify, logs, metrics, status, the HTML report and the demo."""
