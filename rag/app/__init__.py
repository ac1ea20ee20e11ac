"""The Gradio app: layout (`ui`), what each event does (`handlers`), per-tab backends (`sessions`), safe
serving (`serve`), uploads, how answers render, page views and example questions."""
