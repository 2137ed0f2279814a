// The GitLab pipeline context: GitLab's predefined CI_* variables read once into CiContext.
// No other module reads CI_* variables.

export interface CiContext {
  /** True inside a GitLab job (GITLAB_CI=true or any CI_PIPELINE_SOURCE). */
  inCi: boolean;
  serverUrl: string | undefined;
  projectPath: string | undefined;
  projectId: string | undefined;
  projectDir: string;
  defaultBranch: string | undefined;
  /** Set in branch pipelines only (not in MR or tag pipelines). */
  branch: string | undefined;
  tag: string | undefined;
  refName: string | undefined;
  refProtected: boolean;
  pipelineSource: string | undefined;
  mergeRequest:
    | { iid: string; projectId: string | undefined; sourceProjectId: string | undefined; sourceProjectPath: string | undefined }
    | undefined;
  jobUrl: string | undefined;
  pipelineUrl: string | undefined;
  jobTimeoutSeconds: number | undefined;
  /** GitLab's REST API base (CI_API_V4_URL), for the merge request note. */
  apiUrl: string | undefined;
  jobName: string | undefined;
  pipelineId: string | undefined;
  commitSha: string | undefined;
}

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === "" ? undefined : value);

export function readCiContext(env: NodeJS.ProcessEnv, cwd: string): CiContext {
  const iid = nonEmpty(env.CI_MERGE_REQUEST_IID);
  const timeout = Number.parseInt(env.CI_JOB_TIMEOUT ?? "", 10);
  return {
    inCi: env.GITLAB_CI === "true" || nonEmpty(env.CI_PIPELINE_SOURCE) !== undefined,
    serverUrl: nonEmpty(env.CI_SERVER_URL),
    projectPath: nonEmpty(env.CI_PROJECT_PATH),
    projectId: nonEmpty(env.CI_PROJECT_ID),
    projectDir: nonEmpty(env.CI_PROJECT_DIR) ?? cwd,
    defaultBranch: nonEmpty(env.CI_DEFAULT_BRANCH),
    branch: nonEmpty(env.CI_COMMIT_BRANCH),
    tag: nonEmpty(env.CI_COMMIT_TAG),
    refName: nonEmpty(env.CI_COMMIT_REF_NAME),
    refProtected: env.CI_COMMIT_REF_PROTECTED === "true",
    pipelineSource: nonEmpty(env.CI_PIPELINE_SOURCE),
    mergeRequest:
      iid === undefined && env.CI_PIPELINE_SOURCE !== "merge_request_event"
        ? undefined
        : {
            iid: iid ?? "",
            projectId: nonEmpty(env.CI_MERGE_REQUEST_PROJECT_ID),
            sourceProjectId: nonEmpty(env.CI_MERGE_REQUEST_SOURCE_PROJECT_ID),
            sourceProjectPath: nonEmpty(env.CI_MERGE_REQUEST_SOURCE_PROJECT_PATH),
          },
    jobUrl: nonEmpty(env.CI_JOB_URL),
    pipelineUrl: nonEmpty(env.CI_PIPELINE_URL),
    jobTimeoutSeconds: Number.isFinite(timeout) && timeout > 0 ? timeout : undefined,
    apiUrl: nonEmpty(env.CI_API_V4_URL),
    jobName: nonEmpty(env.CI_JOB_NAME),
    pipelineId: nonEmpty(env.CI_PIPELINE_ID),
    commitSha: nonEmpty(env.CI_COMMIT_SHA),
  };
}
