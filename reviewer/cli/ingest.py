"""The ``ingest`` command: files, folders and a labels CSV into the review pool."""

from __future__ import annotations

import sys

import click

from reviewer.cli.context import LOCATION, Context, pass_context


@click.command()
@click.argument("paths", nargs=-1, required=True, type=LOCATION)
@click.option(
    "--labels",
    "labels_csv",
    type=LOCATION,
    help="CSV with columns filename,label (file names relative to the CSV's folder); a local "
    "file or an s3:// / gs:// object.",
)
@click.option(
    "--labels-from-folders",
    is_flag=True,
    help="Use each image's parent folder name as its given label.",
)
@click.option(
    "--update-labels",
    is_flag=True,
    help="Replace the given labels of images that are already present.",
)
@click.option("--source", help="A name for where these images came from (kept per image).")
@click.option(
    "--batch-size",
    default=500,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images per transaction.",
)
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Also ingest files that symlinks lead to outside the folder (and CSV paths outside "
    "the CSV's folder through links).",
)
@click.option(
    "--allow-rejects",
    is_flag=True,
    help="Exit 0 even when some files were rejected (they are still listed).",
)
@pass_context
def ingest(
    ctx: Context,
    paths,
    labels_csv,
    labels_from_folders,
    update_labels,
    source,
    batch_size,
    follow_symlinks,
    allow_rejects,
):
    """Add images from files and folders (recursively) to the review pool.

    A PATH may be an object-storage prefix, s3://bucket/incoming/ or gs://bucket/incoming/,
    read like a folder (objects fetched in parallel; credentials from the libraries' usual
    sources, REVIEWER_S3_ENDPOINT_URL for an S3-compatible server).

    Files without an image extension are skipped and counted; images that fail to decode,
    files over REVIEWER_MAX_FILE_BYTES or decoding beyond REVIEWER_MAX_DECODED_BYTES, files
    that are not regular files, and (unless --follow-symlinks) links that lead outside the
    ingested folder are rejected with the reason; the same bytes twice add nothing. A label
    from --labels wins over the folder name. Names are kept relative to the folder ingested.
    The accepted images are added either way; with rejects the exit status is 1 unless
    --allow-rejects.
    """
    from tqdm import tqdm

    from reviewer.ingest import IngestError, run_ingest

    ctx.require_database()
    with tqdm(desc="ingest", unit="img", file=sys.stderr, disable=None) as bar:
        try:
            report = run_ingest(
                ctx.sessions,
                ctx.store,
                list(paths),
                max_pixels=ctx.config.max_image_pixels,
                labels_csv=labels_csv,
                labels_from_folders=labels_from_folders,
                update_labels=update_labels,
                source=source,
                batch_size=batch_size,
                progress=bar.update,
                follow_symlinks=follow_symlinks,
                max_file_bytes=ctx.config.max_file_bytes,
                max_decoded_bytes=ctx.config.max_decoded_bytes,
            )
        except IngestError as exc:
            raise click.ClickException(str(exc)) from exc
    for line in report.lines():
        click.echo(line)
    if report.rejected and not allow_rejects:
        raise click.ClickException(
            f"{len(report.rejected)} file(s) rejected ({report.reason_summary()}); the "
            f"{report.added} accepted image(s) were added. Fix the files and ingest again, or "
            "pass --allow-rejects to accept this"
        )
