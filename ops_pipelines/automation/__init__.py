"""What iterates the registry and the asset graph, for every capability alike: jobs, schedules, the
weekly report, database_status, alerts, Alertmanager, the metrics textfile, instance cleanup and
recover. A capability's own sensors live in its folder."""
