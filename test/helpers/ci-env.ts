// GitLab's predefined variables for each kind of pipeline the policy table names, as GitLab sets them.

export const PROJECT = "acme/widgets";

const base = {
  GITLAB_CI: "true",
  CI_SERVER_URL: "https://gitlab.example.com",
  CI_SERVER_FQDN: "gitlab.example.com",
  CI_PROJECT_PATH: PROJECT,
  CI_PROJECT_ID: "42",
  CI_DEFAULT_BRANCH: "main",
  CI_COMMIT_REF_PROTECTED: "false",
};

export const PIPELINES = {
  defaultBranch: { ...base, CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "main", CI_COMMIT_REF_NAME: "main", CI_COMMIT_REF_PROTECTED: "true" },
  schedule: { ...base, CI_PIPELINE_SOURCE: "schedule", CI_COMMIT_BRANCH: "main", CI_COMMIT_REF_NAME: "main", CI_COMMIT_REF_PROTECTED: "true" },
  protectedBranch: { ...base, CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "release-1.x", CI_COMMIT_REF_NAME: "release-1.x", CI_COMMIT_REF_PROTECTED: "true" },
  tag: { ...base, CI_PIPELINE_SOURCE: "push", CI_COMMIT_TAG: "v1.2.0", CI_COMMIT_REF_NAME: "v1.2.0", CI_COMMIT_REF_PROTECTED: "true" },
  mergeRequest: {
    ...base,
    CI_PIPELINE_SOURCE: "merge_request_event",
    CI_COMMIT_REF_NAME: "feature/x",
    CI_MERGE_REQUEST_IID: "7",
    CI_MERGE_REQUEST_PROJECT_ID: "42",
    CI_MERGE_REQUEST_SOURCE_PROJECT_ID: "42",
    CI_MERGE_REQUEST_SOURCE_PROJECT_PATH: PROJECT,
  },
  forkMergeRequest: {
    ...base,
    CI_PIPELINE_SOURCE: "merge_request_event",
    CI_COMMIT_REF_NAME: "feature/x",
    CI_MERGE_REQUEST_IID: "8",
    CI_MERGE_REQUEST_PROJECT_ID: "42",
    CI_MERGE_REQUEST_SOURCE_PROJECT_ID: "99",
    CI_MERGE_REQUEST_SOURCE_PROJECT_PATH: "mallory/widgets",
  },
} satisfies Record<string, Record<string, string>>;
