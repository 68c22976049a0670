"""One module per capability; each builds the assets and checks of one configured database."""
