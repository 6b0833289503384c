"""The Streamlit dashboard: single image, batch, history and advanced settings (zh / en)."""
