"""The stages of answering a job, each a module with one job, and the runner that
chains them."""
