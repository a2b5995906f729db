"""Piano Genie: an 8-button interface to an LSTM autoencoder of expert piano performances."""

__version__ = "0.1.0"
