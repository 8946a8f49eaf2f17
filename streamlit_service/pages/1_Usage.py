"""Usage: requests, tokens and latency per model from the hub's request log; needs the master key."""

import altair as alt
import streamlit as st

from chat_ui.config import get_settings
from chat_ui.usage import UsageUnavailable, latency_percentiles, usage_per_day, verify_master_key

st.set_page_config(page_title="GenAILabs usage", page_icon=":material/bar_chart:", layout="wide")
st.title("Usage")
settings = get_settings()

if not st.session_state.get("usage_unlocked"):
    st.caption("The request log covers every key, so this page needs the proxy's master key (LITELLM_MASTER_KEY).")
    with st.form("master-key"):
        key = st.text_input("Master key", type="password", key="master_key_input")
        if st.form_submit_button("Unlock"):
            refused = verify_master_key(settings.proxy_root, key)
            if refused:
                st.error(f"Not unlocked: {refused}.")
            else:
                st.session_state.usage_unlocked = True  # the key itself is not kept
                st.session_state.pop("master_key_input", None)
                st.rerun()
    st.stop()

days = st.segmented_control("Period", [1, 7, 30, 90], default=7, format_func=lambda d: f"{d} days", key="days") or 7
url = settings.hub_database_url.get_secret_value()
try:
    per_day = usage_per_day(url, days)
    latency = latency_percentiles(url, days)
except UsageUnavailable as exc:
    st.error(f"{exc}: start it with `make up`, or check HUB_DATABASE_URL in streamlit_service/.env.")
    st.stop()

if per_day.empty:
    st.info("No requests logged in this period yet.")
    st.stop()

totals = per_day.groupby("model")[["requests", "failures", "prompt_tokens", "completion_tokens"]].sum()
cols = st.columns(4)
cols[0].metric("Requests", int(totals["requests"].sum()))
cols[1].metric("Failures", int(totals["failures"].sum()))
cols[2].metric("Tokens in", int(totals["prompt_tokens"].sum()))
cols[3].metric("Tokens out", int(totals["completion_tokens"].sum()))

left, right = st.columns(2)
with left:
    st.subheader("Requests per day")
    chart = alt.Chart(per_day).mark_bar().encode(x="yearmonthdate(day):T", y="requests:Q", color="model:N")
    st.altair_chart(chart, width="stretch")
with right:
    st.subheader("Tokens per day")
    chart = alt.Chart(per_day).mark_bar().encode(x="yearmonthdate(day):T", y="tokens:Q", color="model:N")
    st.altair_chart(chart, width="stretch")

st.subheader("Per model")
st.dataframe(totals, width="stretch")
st.subheader("Latency percentiles (successful requests, ms)")
st.dataframe(latency.set_index("model").round(1) if not latency.empty else latency, width="stretch")
