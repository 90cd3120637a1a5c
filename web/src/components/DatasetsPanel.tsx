import { useCallback, useEffect, useState } from "react";
import type { DatasetDescription, DatasetInfo } from "@edgebrain/types";
import { api, errorText, uploadDataset } from "../api";
import { DataTable } from "./DataTable";

function datasetName(fileName: string): string {
  const stem = fileName.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_]/g, "_").slice(0, 64);
  return /^[A-Za-z_]/.test(stem) ? stem : `d_${stem}`.slice(0, 64);
}

export function DatasetsPanel() {
  const [datasets, setDatasets] = useState<Array<DatasetInfo>>([]);
  const [preview, setPreview] = useState<DatasetDescription | null>(null);
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [file, setFile] = useState<File | null>(null);
  // Remounts the file input after an upload, clearing the chosen file.
  const [inputKey, setInputKey] = useState(0);

  const refresh = useCallback(() => {
    api
      .listDatasets()
      .then((list) => setDatasets(list.datasets))
      .catch((reason: unknown) => setError(errorText(reason)));
  }, []);
  useEffect(refresh, [refresh]);

  const show = (id: string) => {
    setError(null);
    api
      .describeDataset(id)
      .then(setPreview)
      .catch((reason: unknown) => setError(errorText(reason)));
  };

  const upload = () => {
    if (!file) return;
    setError(null);
    setPreview(null);
    setProgress({ loaded: 0, total: file.size });
    const { done } = uploadDataset(file, name || datasetName(file.name), (loaded, total) => setProgress({ loaded, total }));
    done
      .then((info) => {
        refresh();
        show(info.id);
        setFile(null);
        setName("");
        setInputKey((key) => key + 1);
      })
      .catch((reason: unknown) => {
        setError(errorText(reason));
        setProgress(null);
      });
  };

  return (
    <section className="panel datasets" aria-label="Datasets">
      <h2>Datasets</h2>
      <div className="upload">
        <input
          key={inputKey}
          type="file"
          aria-label="Dataset file"
          accept=".csv,.parquet,.ndjson,.jsonl,.json"
          onChange={(event) => {
            const chosen = event.target.files?.[0] ?? null;
            setFile(chosen);
            if (chosen) setName(datasetName(chosen.name));
            setProgress(null);
          }}
        />
        <input aria-label="Dataset name" placeholder="name" value={name} onChange={(event) => setName(event.target.value)} />
        <button type="button" disabled={!file} onClick={upload}>
          Upload
        </button>
        {progress ? (
          <progress data-testid="upload-progress" max={progress.total || 1} value={progress.loaded}>
            {Math.round((100 * progress.loaded) / (progress.total || 1))}%
          </progress>
        ) : null}
      </div>
      {error ? <p className="error" role="alert">{error}</p> : null}
      <ul className="dataset-list">
        {datasets.map((dataset) => (
          <li key={dataset.id} data-testid="dataset">
            <button type="button" onClick={() => show(dataset.id)}>
              {dataset.name}
            </button>{" "}
            <span className="muted">
              {dataset.row_count} rows · {dataset.columns.length} columns · {dataset.scope}
            </span>
            {dataset.owned ? (
              <button
                type="button"
                className="icon"
                aria-label={`Delete dataset ${dataset.name}`}
                onClick={() => {
                  if (!window.confirm(`Delete dataset "${dataset.name}"?`)) return;
                  api
                    .deleteDataset(dataset.id)
                    .then(() => {
                      if (preview?.dataset.id === dataset.id) setPreview(null);
                      refresh();
                    })
                    .catch((reason: unknown) => setError(errorText(reason)));
                }}
              >
                ✕
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      {preview ? (
        <div className="preview" data-testid="dataset-preview">
          <h3>
            {preview.dataset.name} <span className="muted">({preview.dataset.row_count} rows)</span>
          </h3>
          <DataTable
            rows={preview.stats.map((stat) => ({
              column: stat.name,
              type: stat.dtype,
              nulls: stat.null_count,
              min: stat.min ?? null,
              max: stat.max ?? null,
              mean: stat.mean ?? null,
            }))}
            caption="Columns"
          />
          <DataTable rows={preview.sample_rows} columns={preview.dataset.columns.map((column) => column.name)} caption="First rows" testId="preview-rows" />
        </div>
      ) : null}
    </section>
  );
}
