"""The Documents page's sections: collections, uploads with a progress bar, and the documents of one collection."""

import time
from dataclasses import dataclass

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from chat_ui.host import HostClient, HostProblem
from chat_ui.rag_models import UPLOAD_TYPES, Collection, FileResult, Job, UploadOutcome

PROXY_MODE_NOTE = (
    "Documents and retrieval live in the agent host, and this UI talks straight to the proxy: "
    "set AGENT_HOST_URL in streamlit_service/.env to use them."
)
POLL_SECONDS = 0.3
# An ingestion job the page follows; past this the page stops waiting (the job goes on in the host).
JOB_PATIENCE_SECONDS = 600.0
STATUS_WORDS = {
    "indexed": ":green[indexed]",
    "duplicate": ":orange[duplicate: already in the collection, nothing done]",
    "rejected": ":red[rejected]",
    "failed": ":red[failed]",
    "queued": "queued",
}


@dataclass
class UploadReport:
    """What the last upload did, kept across the rerun that clears the file picker."""

    collection: str
    job: Job | None
    files: list[FileResult]
    problem: str = ""


def flash(kind: str, text: str) -> None:
    """A message shown once, after the rerun that follows an action."""
    st.session_state.documents_flash = (kind, text)


def show_flash() -> None:
    kind, text = st.session_state.pop("documents_flash", ("", ""))
    if kind == "success":
        st.success(text, icon=":material/check_circle:")
    elif kind == "error":
        st.error(text, icon=":material/error:")


def collections_table(collections: list[Collection]) -> None:
    if not collections:
        st.caption("No collections yet: create one to upload documents into.")
        return
    rows = [
        {
            "collection": c.name,
            "documents": c.documents,
            "chunks": c.chunks,
            "embedding model": c.embedding_model,
            "chunk tokens / overlap": f"{c.chunk_tokens} / {c.chunk_overlap}",
            "description": c.description,
            "access": access(c),
        }
        for c in collections
    ]
    st.dataframe(rows, hide_index=True, width="stretch", key="collections-table")


def access(collection: Collection) -> str:
    """Whose a collection is, as its row says it."""
    if not collection.writable:
        return f"shared by {collection.owner_login or 'someone'}: read-only"
    return "yours, shared with everyone" if collection.shared else "yours"


def create_form(client: HostClient) -> None:
    with st.expander("New collection", expanded=False), st.form("new-collection", clear_on_submit=True):
        name = st.text_input("Name", placeholder="lowercase letters, digits, - and _", key="new-collection-name")
        description = st.text_input("Description (optional)", key="new-collection-description")
        left, right = st.columns(2)
        size = left.number_input(
            "Chunk size in tokens (empty: the host's default)", 16, 512, value=None, key="new-collection-size"
        )
        overlap = right.number_input(
            "Overlap in tokens (empty: the host's default)", 0, 256, value=None, key="new-collection-overlap"
        )
        if not st.form_submit_button("Create", icon=":material/add:"):
            return
    name = name.strip()
    if not name:
        st.error("Not created: the collection needs a name.")
        return
    try:
        client.create_collection(name, description.strip(), size, overlap)
    except HostProblem as exc:
        st.error(f"Not created: {exc.message}")
        return
    st.session_state.documents_collection = name
    flash("success", f"Collection {name} created.")
    st.rerun()


def pick_collection(client: HostClient, collections: list[Collection]) -> Collection:
    """The collection the page shows; its owner (or an admin) may share it or delete it, others only read it."""
    names = [c.name for c in collections]
    if st.session_state.get("documents_collection") not in names:
        st.session_state.documents_collection = names[0]
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    name: str = left.selectbox("Collection", names, key="documents_collection")
    chosen = next(c for c in collections if c.name == name)
    if not chosen.writable:
        st.info(
            f"{chosen.name} is shared by {chosen.owner_login or 'its owner'}: you can search it and chat with it, "
            "but not change it.",
            icon=":material/lock:",
        )
        return chosen
    right.button("Delete collection", icon=":material/delete:", key="delete-collection", on_click=_ask_delete)
    st.toggle(
        "Shared with everyone (read-only for them)",
        value=chosen.shared,
        key=f"share-{chosen.name}",
        on_change=_share,
        args=(client, chosen.name),
    )
    return chosen


def _share(client: HostClient, name: str) -> None:
    shared = bool(st.session_state.get(f"share-{name}"))
    try:
        client.share_collection(name, shared)
    except HostProblem as exc:
        flash("error", f"Sharing not changed: {exc.message}")
        return
    flash("success", f"{name} is {'shared with everyone, read-only' if shared else 'yours alone again'}.")


def _ask_delete() -> None:
    st.session_state.confirm_delete_collection = st.session_state.documents_collection


def _forget_delete() -> None:
    st.session_state.confirm_delete_collection = None


@st.dialog("Delete this collection?", on_dismiss=_forget_delete)
def confirm_delete(client: HostClient, collection: Collection) -> None:
    st.write(
        f"“{collection.name}” with its {collection.documents} documents and {collection.chunks} chunks "
        "will be deleted from the index. This cannot be undone."
    )
    left, right = st.columns(2)
    if left.button("Delete", type="primary", key="confirm-delete-collection"):
        try:
            client.delete_collection(collection.name)
        except HostProblem as exc:
            st.error(f"Not deleted: {exc.message}")
            return
        _forget_delete()
        st.session_state.pop("documents_collection", None)
        flash("success", f"Collection {collection.name} deleted.")
        st.rerun()
    if right.button("Cancel", key="cancel-delete-collection"):
        _forget_delete()
        st.rerun()


def upload_section(client: HostClient, collection: str) -> None:
    st.subheader("Add documents")
    report: UploadReport | None = st.session_state.get("upload_report")
    if report is not None and report.collection == collection:
        show_report(report)
    round_ = st.session_state.setdefault("uploader_round", 0)
    files = st.file_uploader(
        "PDF, TXT, Markdown, HTML or DOCX; several at once",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key=f"uploader-{round_}",
    )
    if st.button("Upload and index", icon=":material/upload:", key="upload", disabled=not files):
        batch = [(file.name, file.getvalue()) for file in files or []]
        st.session_state.upload_report = ingest(client, collection, batch)
        st.session_state.uploader_round = round_ + 1  # a fresh, empty file picker
        st.rerun()


def ingest(client: HostClient, collection: str, batch: list[tuple[str, bytes]]) -> UploadReport:
    """One request for the whole batch, then a progress bar fed by the job until it is done."""
    try:
        outcome = client.upload(collection, batch)
    except HostProblem as exc:
        return UploadReport(collection, None, [], f"Nothing uploaded: {exc.message}")
    if outcome.job is None:
        return UploadReport(collection, None, outcome.files, _refusal(outcome))
    bar = st.progress(0.0, text=progress_text(outcome.job))
    job, problem = follow(client, outcome.job, bar)
    return UploadReport(collection, job, merge_results(outcome.files, job.files), problem)


def follow(client: HostClient, job: Job, bar: DeltaGenerator) -> tuple[Job, str]:
    """Polls the job into the progress bar until it finishes; the last state seen and any problem."""
    deadline = time.monotonic() + JOB_PATIENCE_SECONDS
    while not job.finished:
        if time.monotonic() > deadline:
            return job, "The page stopped waiting; the host goes on indexing: reload to see the documents."
        time.sleep(POLL_SECONDS)
        try:
            job = client.job(job.id)
        except HostProblem as exc:
            return job, f"Lost track of the indexing job: {exc.message}"
        bar.progress(job.progress, text=progress_text(job))
    return job, f"The indexing job failed: {job.error}" if job.status == "failed" else ""


def progress_text(job: Job) -> str:
    chunks = f" · {job.chunks_done}/{job.chunks_total} chunks" if job.chunks_total else ""
    return f"Indexing: {job.files_done}/{job.files_total} files{chunks}"


def merge_results(sent: list[FileResult], finished: list[FileResult]) -> list[FileResult]:
    """The job's final word on the files it took, plus the ones refused or skipped at upload."""
    taken = [result for result in sent if result.status == "queued"]
    done = list(finished) or taken
    return done + [result for result in sent if result.status != "queued"]


def _refusal(outcome: UploadOutcome) -> str:
    if outcome.error is not None:
        return f"Nothing indexed: {outcome.error.message}"
    if outcome.files and all(result.status == "duplicate" for result in outcome.files):
        return ""
    return "Nothing indexed."


def show_report(report: UploadReport) -> None:
    job = report.job
    if job is not None:
        indexed = sum(1 for result in report.files if result.status == "indexed")
        done = f"Done: {indexed} of {len(report.files)} files indexed, {plural(job.chunks_done, 'chunk')}"
        st.progress(job.progress, text=done)
    if report.problem:
        st.error(report.problem, icon=":material/error:")
    for result in report.files:
        line = f"**{result.filename}** · {STATUS_WORDS.get(result.status, result.status)}"
        if result.chunks is not None and result.status == "indexed":
            line += f" · {plural(result.chunks, 'chunk')}"
        if result.error is not None:
            line += f": {result.error.message} ({result.error.status})"
        st.markdown(line)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def documents_section(client: HostClient, collection: str, writable: bool = True) -> None:
    st.subheader("Documents")
    try:
        documents = client.documents(collection)
    except HostProblem as exc:
        st.error(f"Documents unavailable: {exc.message}")
        return
    if not documents:
        st.caption("No documents in this collection yet.")
        return
    widths = [3, 0.7, 0.7, 0.7, 0.8, 1.2, 1.2] if writable else [3, 0.7, 0.7, 0.7, 0.8]
    header = st.columns(widths)
    for column, title in zip(header, ["file", "type", "pages", "chunks", "status"], strict=False):
        column.markdown(f"**{title}**")
    for document in documents:
        cells = st.columns(widths, vertical_alignment="center")
        cells[0].markdown(document.filename)
        cells[1].markdown(document.type)
        cells[2].markdown("–" if document.pages is None else str(document.pages))
        cells[3].markdown(str(document.chunks))
        cells[4].markdown(document.status)
        if not writable:
            continue
        if cells[5].button("Re-index", key=f"reindex-{document.id}", help="Read, chunk and embed the file again"):
            reindex(client, collection, document.id, document.filename)
        with cells[6].popover("Delete", icon=":material/delete:"):
            st.write(f"Remove {document.filename} and its {document.chunks} chunks from the index?")
            if st.button("Delete document", type="primary", key=f"delete-{document.id}"):
                try:
                    client.delete_document(collection, document.id)
                except HostProblem as exc:
                    flash("error", f"Not deleted: {exc.message}")
                else:
                    flash("success", f"{document.filename} deleted.")
                st.rerun()


def reindex(client: HostClient, collection: str, document_id: str, filename: str) -> None:
    try:
        job = client.reindex_document(collection, document_id)
    except HostProblem as exc:
        flash("error", f"Not re-indexed: {exc.message}")
        st.rerun()
    if job is not None:
        job, problem = follow(client, job, st.progress(job.progress, text=progress_text(job)))
        if problem:
            flash("error", problem)
            st.rerun()
    flash("success", f"{filename} re-indexed.")
    st.rerun()
