"""Usage: a person's own requests, tokens and cost per model; an admin sees everyone's, per person."""

import altair as alt
import streamlit as st

from chat_ui import auth
from chat_ui.config import get_settings
from chat_ui.people import account_store
from chat_ui.usage import UsageUnavailable, latency_percentiles, per_person, person_usage, usage_per_day
from genailabs_accounts.errors import AccountsUnavailable

st.set_page_config(page_title="GenAILabs usage", page_icon=":material/bar_chart:", layout="wide")
settings = get_settings()
person = auth.require_person(settings)
with st.sidebar:
    auth.signout_control(person)
st.title("Usage")

everyone = person.account.is_admin and st.toggle("Everyone", value=True, key="usage_everyone")
st.caption("Everyone's requests, per person." if everyone else "Your requests, counted on your proxy key.")
days = st.segmented_control("Period", [1, 7, 30, 90], default=7, format_func=lambda d: f"{d} days", key="days") or 7
try:
    usage = person_usage(account_store(settings), days, None if everyone else person.account.id)
except AccountsUnavailable as exc:
    st.error(f"Usage unavailable: {exc}. Start it with `make up`.", icon=":material/error:")
    st.stop()

if usage.empty:
    st.info("No requests in this period yet.")
    st.stop()

cols = st.columns(5)
cols[0].metric("Requests", int(usage["requests"].sum()))
cols[1].metric("Failures", int(usage["failures"].sum()))
cols[2].metric("Tokens in", int(usage["prompt_tokens"].sum()))
cols[3].metric("Tokens out", int(usage["completion_tokens"].sum()))
cols[4].metric("Cost", f"${usage['cost'].sum():.4f}")

if everyone:
    st.subheader("Per person")
    st.dataframe(per_person(usage), width="stretch")
st.subheader("Per person and model" if everyone else "Per model")
shown = usage.drop(columns=["user_id"]) if everyone else usage.drop(columns=["user_id", "login"])
st.dataframe(shown, hide_index=True, width="stretch")

if not everyone:
    st.stop()
# The whole request log (every key, services included): for admins only.
url = settings.hub_database_url.get_secret_value()
try:
    per_day = usage_per_day(url, days)
    latency = latency_percentiles(url, days)
except UsageUnavailable as exc:
    st.error(f"{exc}: start it with `make up`, or check HUB_DATABASE_URL in streamlit_service/.env.")
    st.stop()
if not per_day.empty:
    left, right = st.columns(2)
    with left:
        st.subheader("Requests per day")
        chart = alt.Chart(per_day).mark_bar().encode(x="yearmonthdate(day):T", y="requests:Q", color="model:N")
        st.altair_chart(chart, width="stretch")
    with right:
        st.subheader("Tokens per day")
        chart = alt.Chart(per_day).mark_bar().encode(x="yearmonthdate(day):T", y="tokens:Q", color="model:N")
        st.altair_chart(chart, width="stretch")
    st.subheader("Latency percentiles (successful requests, ms)")
    st.dataframe(latency.set_index("model").round(1) if not latency.empty else latency, width="stretch")
