"""Under an answer: the sources it cites, as expanders "[1] file.pdf · page 3" with the chunk and its score."""

import streamlit as st

from chat_ui.rag_models import Citation


def render(citations: list[Citation] | None, searched: list[str]) -> None:
    """The cited chunks, one expander each; a line saying so when the search found nothing relevant.

    `citations` None: the answer did not search documents.
    """
    if citations is None:
        return
    if not citations:
        names = ", ".join(searched) if searched else "the chat's collections"
        st.caption(f"Searched {names}: nothing relevant, so no sources.")
        return
    st.caption("Sources")
    for citation in citations:
        with st.expander(citation.label(), icon=":material/description:"):
            where = [f"score {citation.score:.3f}"]
            if citation.collection:
                where.append(f"collection {citation.collection}")
            if citation.section:
                where.append(f"section {citation.section}")
            st.caption(" · ".join(where))
            st.text(citation.text)
