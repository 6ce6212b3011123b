"""dramatiq broker set-up and the thin actor that answers jobs."""
