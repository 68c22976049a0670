"""The demo: a sample ERP database generator and the runner behind ./scripts/demo.sh."""
