"""Retrieval testing on the Documents page: a question, a search mode, and the chunks that come back."""

import streamlit as st

from chat_ui.host import HostClient, HostProblem
from chat_ui.rag_models import SEARCH_MODES, Hit, QueryResult

MODE_HELP = "hybrid: keywords (BM25) and meaning (vectors) fused; vector: meaning only; bm25: keywords only"


def render(client: HostClient, names: list[str], current: str) -> None:
    st.subheader("Test retrieval")
    st.caption("Ask what a chat would ask, and see which chunks the model would be given.")
    with st.form("retrieval-test"):
        query = st.text_input("Question", key="retrieval-query")
        left, middle, right = st.columns([3, 1, 1])
        chosen = left.multiselect("Collections", names, default=[current], key=f"retrieval-collections-{current}")
        mode = middle.selectbox("Mode", SEARCH_MODES, key="retrieval-mode", help=MODE_HELP)
        top_k = right.number_input("Top k", 1, 50, value=5, key="retrieval-top-k")
        submitted = st.form_submit_button("Search", icon=":material/search:")
    if submitted:
        st.session_state.retrieval_result = search(client, query, chosen, int(top_k), str(mode))
    outcome = st.session_state.get("retrieval_result")
    if isinstance(outcome, str):
        st.error(outcome, icon=":material/error:")
    elif isinstance(outcome, QueryResult):
        show_result(outcome)


def search(client: HostClient, query: str, collections: list[str], top_k: int, mode: str) -> QueryResult | str:
    """The host's hits, or why there are none to show."""
    if not query.strip():
        return "Type a question first."
    if not collections:
        return "Pick at least one collection."
    try:
        return client.query(query.strip(), collections, top_k, mode)
    except HostProblem as exc:
        return f"Search failed: {exc.message}"


def show_result(result: QueryResult) -> None:
    if not result.hits:
        st.info(
            f"Nothing relevant for “{result.query}” ({result.mode}, {result.took_ms:.0f} ms): "
            "a chat would say the documents do not answer it."
        )
        return
    st.caption(f"{len(result.hits)} chunks for “{result.query}” · {result.mode} · {result.took_ms:.0f} ms")
    for hit in result.hits:
        with st.container(border=True):
            st.markdown(f"**#{hit.rank}** · score {hit.score:.4f} · {where(hit)}")
            parts = []
            if hit.vector_score is not None:
                parts.append(f"vector {hit.vector_score:.3f}")
            if hit.bm25_score is not None:
                parts.append(f"bm25 {hit.bm25_score:.3f}")
            if parts:
                st.caption(" · ".join(parts) + f" · collection {hit.collection}")
            st.text(hit.text)


def where(hit: Hit) -> str:
    parts = [hit.source]
    if hit.page is not None:
        parts.append(f"page {hit.page}")
    if hit.section:
        parts.append(hit.section)
    return " · ".join(parts)
