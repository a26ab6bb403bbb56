# DirSync PowerShell module: thin cmdlets over the dirsync native library (C ABI, UTF-16 entry
# points) through the P/Invoke class in DirSync.Native.cs. Requests and results are JSON.

Set-StrictMode -Version 2.0

if (-not ('DirSync.Native' -as [type])) {
    Add-Type -Path (Join-Path $PSScriptRoot 'DirSync.Native.cs')
}
$null = [DirSync.Native]::Load($PSScriptRoot)

$script:Engine = [IntPtr]::Zero

# ---- helpers (not exported) ----

function Get-DirSyncErrorCategory {
    param([int] $Code)
    switch ($Code) {
        -1 { return [System.Management.Automation.ErrorCategory]::InvalidArgument }
        -2 { return [System.Management.Automation.ErrorCategory]::InvalidArgument }
        -3 { return [System.Management.Automation.ErrorCategory]::InvalidArgument }
        -4 { return [System.Management.Automation.ErrorCategory]::InvalidArgument }
        -5 { return [System.Management.Automation.ErrorCategory]::InvalidData }
        -6 { return [System.Management.Automation.ErrorCategory]::ReadError }
        -7 { return [System.Management.Automation.ErrorCategory]::ResourceBusy }
        -8 { return [System.Management.Automation.ErrorCategory]::ConnectionError }
        -9 { return [System.Management.Automation.ErrorCategory]::AuthenticationError }
        -10 { return [System.Management.Automation.ErrorCategory]::LimitsExceeded }
        -11 { return [System.Management.Automation.ErrorCategory]::InvalidResult }
        -12 { return [System.Management.Automation.ErrorCategory]::InvalidResult }
        -13 { return [System.Management.Automation.ErrorCategory]::LimitsExceeded }
        -14 { return [System.Management.Automation.ErrorCategory]::ObjectNotFound }
        -15 { return [System.Management.Automation.ErrorCategory]::OperationStopped }
        -16 { return [System.Management.Automation.ErrorCategory]::NotImplemented }
        default { return [System.Management.Automation.ErrorCategory]::NotSpecified }
    }
}

function New-DirSyncErrorRecord {
    param([Parameter(Mandatory)] [DirSync.DirSyncException] $Exception, [object] $Target)
    $category = Get-DirSyncErrorCategory -Code $Exception.Code
    $record = New-Object System.Management.Automation.ErrorRecord($Exception, $Exception.CodeName, $category, $Target)
    $record.ErrorDetails = New-Object System.Management.Automation.ErrorDetails($Exception.Message)
    $record.ErrorDetails.RecommendedAction = $Exception.ErrorJson
    return $record
}

function Assert-DirSyncConnected {
    param([Parameter(Mandatory)] $Cmdlet)
    if ($script:Engine -eq [IntPtr]::Zero) {
        $ex = New-Object System.InvalidOperationException('Not connected: run Connect-DirSync first.')
        $record = New-Object System.Management.Automation.ErrorRecord($ex, 'DirSyncNotConnected', [System.Management.Automation.ErrorCategory]::ConnectionError, $null)
        $Cmdlet.ThrowTerminatingError($record)
    }
}

function ConvertTo-DirSyncRequest {
    param([hashtable] $Request)
    if ($null -eq $Request) { return '{}' }
    return (ConvertTo-Json -InputObject $Request -Depth 32 -Compress)
}

function Add-DirSyncTypeName {
    param([Parameter(ValueFromPipeline)] $InputObject, [string] $TypeName)
    process {
        if ($null -ne $InputObject) {
            $InputObject.PSObject.TypeNames.Insert(0, $TypeName)
            $InputObject
        }
    }
}

# Calls an engine operation; long operations run on a worker thread so that progress is shown
# with Write-Progress and Ctrl+C cancels the native call.
function Invoke-DirSyncNative {
    param(
        [Parameter(Mandatory)] $Cmdlet,
        [Parameter(Mandatory)] [string] $Operation,
        [hashtable] $Request,
        [switch] $Long,
        # What error records name as their target (defaults to the request; callers whose
        # request holds a secret pass something else).
        [object] $Target = $Request
    )
    Assert-DirSyncConnected -Cmdlet $Cmdlet
    $json = ConvertTo-DirSyncRequest -Request $Request
    try {
        if (-not $Long) {
            $text = [DirSync.Native]::Call($Operation, $script:Engine, $json)
        }
        else {
            [DirSync.Native]::EnableProgress($script:Engine)
            $task = [DirSync.Native]::CallAsync($Operation, $script:Engine, $json)
            $done = $false
            try {
                while (-not $task.Wait(200)) {
                    foreach ($progressEvent in [DirSync.Native]::TakeProgress()) {
                        $e = ConvertFrom-Json -InputObject $progressEvent
                        if ($e.event -eq 'progress') {
                            $status = '{0} {1}: {2} objects' -f $e.connector, $e.profile, $e.processed
                            Write-Progress -Activity "dirsync $Operation" -Status $status
                        }
                    }
                }
                $done = $true
            }
            finally {
                if (-not $done) {
                    # Ctrl+C (pipeline stopped): ask the native call to stop and wait for it.
                    [DirSync.Native]::Cancel($script:Engine)
                    try { $null = $task.Wait() } catch { Write-Verbose 'cancelled' }
                }
                Write-Progress -Activity "dirsync $Operation" -Completed
                [DirSync.Native]::DisableProgress($script:Engine)
            }
            $text = $task.Result
        }
    }
    catch [DirSync.DirSyncException] {
        $Cmdlet.ThrowTerminatingError((New-DirSyncErrorRecord -Exception $_.Exception -Target $Target))
    }
    catch [System.AggregateException] {
        $inner = $_.Exception.InnerException
        if ($inner -is [DirSync.DirSyncException]) {
            $Cmdlet.ThrowTerminatingError((New-DirSyncErrorRecord -Exception $inner -Target $Target))
        }
        throw
    }
    return (ConvertFrom-Json -InputObject $text)
}

function Invoke-DirSyncStage {
    param([Parameter(Mandatory)] $Cmdlet, [Parameter(Mandatory)] [string] $Operation, [string] $Text)
    try {
        return [DirSync.Native]::CallStage($Operation, $Text)
    }
    catch [DirSync.DirSyncException] {
        $Cmdlet.ThrowTerminatingError((New-DirSyncErrorRecord -Exception $_.Exception -Target $Text))
    }
}

# ---- session ----

function Connect-DirSync {
    <#
    .SYNOPSIS
    Opens the dirsync engine for this session from a configuration.
    .DESCRIPTION
    Loads a TOML configuration file (or JSON text) and locks its state. The other cmdlets use
    this session engine until Disconnect-DirSync.
    .PARAMETER ConfigPath
    Path of the TOML configuration file.
    .PARAMETER ConfigJson
    The configuration as JSON text (same schema as the TOML file).
    .EXAMPLE
    Connect-DirSync -ConfigPath C:\dirsync\dirsync.toml
    .EXAMPLE
    Connect-DirSync -ConfigJson (Get-Content .\config.json -Raw)
    #>
    [CmdletBinding(DefaultParameterSetName = 'Path')]
    param(
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'Path', ValueFromPipelineByPropertyName)]
        [Alias('FullName', 'Path')]
        [string] $ConfigPath,
        [Parameter(Mandatory, ParameterSetName = 'Json')]
        [string] $ConfigJson
    )
    process {
        if ($script:Engine -ne [IntPtr]::Zero) {
            [DirSync.Native]::Close($script:Engine)
            $script:Engine = [IntPtr]::Zero
        }
        $config = $ConfigJson
        if ($PSCmdlet.ParameterSetName -eq 'Path') {
            $config = (Resolve-Path -LiteralPath $ConfigPath).ProviderPath
        }
        try {
            $script:Engine = [DirSync.Native]::Open($config)
        }
        catch [DirSync.DirSyncException] {
            $PSCmdlet.ThrowTerminatingError((New-DirSyncErrorRecord -Exception $_.Exception -Target $config))
        }
    }
}

function Disconnect-DirSync {
    <#
    .SYNOPSIS
    Closes the session engine and releases the state lock.
    .EXAMPLE
    Disconnect-DirSync
    #>
    [CmdletBinding()]
    param()
    if ($script:Engine -ne [IntPtr]::Zero) {
        [DirSync.Native]::Close($script:Engine)
        $script:Engine = [IntPtr]::Zero
    }
}

# ---- runs ----

function Start-DirSyncCycle {
    <#
    .SYNOPSIS
    Runs a synchronization cycle (Delta or Initial).
    .DESCRIPTION
    Imports every connector, synchronizes, checks the deletion threshold and exports. Shows
    progress; Ctrl+C cancels. -WhatIf runs the cycle as a dry run (nothing is exported).
    .PARAMETER PolicyType
    Delta (delta import and sync) or Initial (full import and sync).
    .PARAMETER ConfirmDeletes
    Export deletes above the deletion threshold (asks for confirmation, ConfirmImpact High).
    .PARAMETER AllowEmptyImport
    Accept an import that returns no objects where the connector space holds some.
    .EXAMPLE
    Start-DirSyncCycle -PolicyType Delta
    .EXAMPLE
    Start-DirSyncCycle -PolicyType Initial -WhatIf
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Medium')]
    param(
        [Parameter(Position = 0)]
        [ValidateSet('Delta', 'Initial')]
        [string] $PolicyType = 'Delta',
        [switch] $ConfirmDeletes,
        [switch] $AllowEmptyImport
    )
    $dryRun = -not $PSCmdlet.ShouldProcess('all connectors', "$PolicyType synchronization cycle")
    if ($ConfirmDeletes -and -not $dryRun) {
        if (-not $PSCmdlet.ShouldContinue('Deletes above the deletion threshold will be exported.', 'Confirm deletes')) {
            $ConfirmDeletes = $false
        }
    }
    $request = @{ policy = $PolicyType; dry_run = $dryRun; confirm_deletes = [bool]$ConfirmDeletes; allow_empty_import = [bool]$AllowEmptyImport }
    $result = Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'cycle' -Request $request -Long
    $result.runs | Add-DirSyncTypeName -TypeName 'DirSync.RunRecord'
}

function Invoke-DirSyncRunProfile {
    <#
    .SYNOPSIS
    Runs one run profile (FullImport, DeltaImport, FullSync, DeltaSync, Export) on a connector.
    .PARAMETER ConnectorName
    The connector (pipeline input by property name: Name, ConnectorName).
    .PARAMETER RunProfile
    The run profile.
    .EXAMPLE
    Invoke-DirSyncRunProfile -ConnectorName corp.example.com -RunProfile FullImport
    .EXAMPLE
    Get-DirSyncConnector | Invoke-DirSyncRunProfile -RunProfile DeltaImport
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Medium')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)]
        [Alias('Name', 'Connector')]
        [string] $ConnectorName,
        [Parameter(Mandatory, Position = 1)]
        [ValidateSet('FullImport', 'DeltaImport', 'FullSync', 'DeltaSync', 'Export')]
        [string] $RunProfile,
        [switch] $ConfirmDeletes,
        [switch] $AllowEmptyImport
    )
    process {
        $dryRun = -not $PSCmdlet.ShouldProcess($ConnectorName, $RunProfile)
        $request = @{ connector = $ConnectorName; profile = $RunProfile; dry_run = $dryRun; confirm_deletes = [bool]$ConfirmDeletes; allow_empty_import = [bool]$AllowEmptyImport }
        Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'run_profile' -Request $request -Long | Add-DirSyncTypeName -TypeName 'DirSync.RunRecord'
    }
}

function Sync-DirSyncObject {
    <#
    .SYNOPSIS
    Previews the synchronization of one connector-space object; -Commit applies it.
    .DESCRIPTION
    Runs the real synchronization of one object (like Sync-ADSyncCSObject): the inbound rules
    of its connector and whether each has it in scope, the join or projection decision, the
    metaverse attribute changes with the rule that contributed each value, and per target
    connector the export it would get (add, update, rename or delete with attribute changes).
    Without -Commit nothing is kept. With -Commit (ShouldProcess) the result is stored and the
    exports become pending; nothing is exported until the next export run.
    .PARAMETER ConnectorName
    The object's connector (pipeline input by property name).
    .PARAMETER DistinguishedName
    The object's DN in the connector space.
    .PARAMETER Anchor
    The object's anchor instead of its DN.
    .PARAMETER Commit
    Store the result (asks for confirmation under -Confirm; -WhatIf only previews).
    .EXAMPLE
    Sync-DirSyncObject -ConnectorName corp -DistinguishedName 'CN=Alice,OU=People,DC=corp,DC=example'
    .EXAMPLE
    (Sync-DirSyncObject -ConnectorName corp -DistinguishedName 'CN=Alice,OU=People,DC=corp,DC=example').MetaverseChanges
    .EXAMPLE
    (Sync-DirSyncObject -ConnectorName corp -DistinguishedName 'CN=Alice,OU=People,DC=corp,DC=example').exports
    .EXAMPLE
    Get-DirSyncCSObject -ConnectorName hr -Anchor 4711 | Sync-DirSyncObject -Commit
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Medium', DefaultParameterSetName = 'Dn')]
    [OutputType('DirSync.ObjectSyncResult')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)] [Alias('Connector')] [string] $ConnectorName,
        [Parameter(Mandatory, Position = 1, ParameterSetName = 'Dn', ValueFromPipelineByPropertyName)] [Alias('DN')] [string] $DistinguishedName,
        [Parameter(Mandatory, ParameterSetName = 'Anchor', ValueFromPipelineByPropertyName)] [string] $Anchor,
        [switch] $Commit
    )
    process {
        $name = if ($PSCmdlet.ParameterSetName -eq 'Dn') { $DistinguishedName } else { $Anchor }
        $commitIt = $Commit -and $PSCmdlet.ShouldProcess("$ConnectorName`: $name", 'Synchronize and commit')
        $request = @{ connector = $ConnectorName; commit = [bool]$commitIt }
        if ($PSCmdlet.ParameterSetName -eq 'Dn') { $request.dn = $DistinguishedName } else { $request.anchor = $Anchor }
        $r = Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'sync_object' -Request $request
        $mvChanges = @()
        if ($null -ne $r.metaverse) { $mvChanges = @($r.metaverse.changes | Add-DirSyncTypeName -TypeName 'DirSync.MVAttributeChange') }
        $r | Add-Member -NotePropertyName DistinguishedName -NotePropertyValue $r.object.dn
        $r | Add-Member -NotePropertyName Action -NotePropertyValue $r.link.action
        $r | Add-Member -NotePropertyName MetaverseChanges -NotePropertyValue $mvChanges
        # Typed in place (PowerShell names are case-insensitive: 'Exports' would clash with 'exports').
        $null = $r.exports | Add-DirSyncTypeName -TypeName 'DirSync.ExportPreview'
        $null = $r.inbound_rules | Add-DirSyncTypeName -TypeName 'DirSync.RuleEvaluation'
        $r | Add-DirSyncTypeName -TypeName 'DirSync.ObjectSyncResult'
    }
}

# ---- queries ----

function Get-DirSyncPendingExport {
    <#
    .SYNOPSIS
    Lists the pending exports (the plan), per object with attribute changes.
    .PARAMETER ConnectorName
    Only this connector's pending exports.
    .EXAMPLE
    Get-DirSyncPendingExport | Where-Object Operation -eq 'delete'
    #>
    [CmdletBinding()]
    param([Parameter(ValueFromPipelineByPropertyName)] [Alias('Name', 'Connector')] [string] $ConnectorName)
    process {
        $plan = Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'plan' -Request @{}
        $plan.objects | Where-Object { -not $ConnectorName -or $_.connector -eq $ConnectorName } | Add-DirSyncTypeName -TypeName 'DirSync.PendingExport'
    }
}

function Get-DirSyncRunHistory {
    <#
    .SYNOPSIS
    Lists recent runs, newest first.
    .PARAMETER NumberRequested
    How many runs (default 20).
    .EXAMPLE
    Get-DirSyncRunHistory -NumberRequested 5
    #>
    [CmdletBinding()]
    param([Alias('Limit')] [ValidateRange(1, 100000)] [int] $NumberRequested = 20)
    Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'history' -Request @{ limit = $NumberRequested } | ForEach-Object { $_ } | Add-DirSyncTypeName -TypeName 'DirSync.RunRecord'
}

function Get-DirSyncConnector {
    <#
    .SYNOPSIS
    Lists the connectors with their type and object counts.
    .PARAMETER Name
    Only the connector with this name (wildcards allowed).
    .EXAMPLE
    Get-DirSyncConnector
    #>
    [CmdletBinding()]
    param([Parameter(Position = 0)] [SupportsWildcards()] [string] $Name = '*')
    Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'connectors' -Request @{} | ForEach-Object { $_ } | Where-Object { $_.name -like $Name } | Add-DirSyncTypeName -TypeName 'DirSync.Connector'
}

function Get-DirSyncRule {
    <#
    .SYNOPSIS
    Lists the sync rules of the configuration.
    .PARAMETER Name
    Only rules whose name matches (wildcards allowed).
    .EXAMPLE
    Get-DirSyncRule -Name 'In from AD*'
    #>
    [CmdletBinding()]
    param([Parameter(Position = 0)] [SupportsWildcards()] [string] $Name = '*')
    Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'rules' -Request @{} | ForEach-Object { $_ } | Where-Object { $_.name -like $Name } | Add-DirSyncTypeName -TypeName 'DirSync.Rule'
}

function Get-DirSyncCSObject {
    <#
    .SYNOPSIS
    Gets connector-space objects: one by DN or anchor, or all of a connector.
    .EXAMPLE
    Get-DirSyncCSObject -ConnectorName corp -DistinguishedName 'CN=Alice,OU=People,DC=corp,DC=example'
    .EXAMPLE
    Get-DirSyncConnector | Get-DirSyncCSObject
    #>
    [CmdletBinding(DefaultParameterSetName = 'All')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)] [Alias('Name', 'Connector')] [string] $ConnectorName,
        [Parameter(Mandatory, ParameterSetName = 'Dn', ValueFromPipelineByPropertyName)] [Alias('DN')] [string] $DistinguishedName,
        [Parameter(Mandatory, ParameterSetName = 'Anchor', ValueFromPipelineByPropertyName)] [string] $Anchor
    )
    process {
        $request = @{ connector = $ConnectorName }
        if ($PSCmdlet.ParameterSetName -eq 'Dn') { $request.dn = $DistinguishedName }
        if ($PSCmdlet.ParameterSetName -eq 'Anchor') { $request.anchor = $Anchor }
        Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'cs_objects' -Request $request | ForEach-Object { $_ } | Add-DirSyncTypeName -TypeName 'DirSync.CSObject'
    }
}

function Get-DirSyncMVObject {
    <#
    .SYNOPSIS
    Gets metaverse objects: one by id, or all.
    .EXAMPLE
    Get-DirSyncMVObject -Id 42
    .EXAMPLE
    Get-DirSyncCSObject -ConnectorName corp -Anchor $a | Get-DirSyncMVObject
    #>
    [CmdletBinding()]
    param([Parameter(Position = 0, ValueFromPipelineByPropertyName)] [Alias('mv_id')] [Nullable[long]] $Id)
    process {
        $request = @{}
        if ($null -ne $Id) { $request.id = $Id }
        Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'mv_objects' -Request $request | ForEach-Object { $_ } | Add-DirSyncTypeName -TypeName 'DirSync.MVObject'
    }
}

function Test-DirSyncFilter {
    <#
    .SYNOPSIS
    Says whether an object is in scope of the connector's rules and which group or clause decided.
    .DESCRIPTION
    Evaluates the scoping filters of every rule of the connector that applies to the object's
    type: a connector-space object by DN or anchor, or an object given inline.
    .EXAMPLE
    Test-DirSyncFilter -ConnectorName corp -DistinguishedName 'CN=Alice,OU=People,DC=corp,DC=example'
    .EXAMPLE
    Import-DirSyncObject -Connector $src | Test-DirSyncFilter -ConnectorName corp
    #>
    [CmdletBinding(DefaultParameterSetName = 'Dn')]
    param(
        [Parameter(Mandatory, Position = 0)] [Alias('Connector')] [string] $ConnectorName,
        [Parameter(Mandatory, ParameterSetName = 'Dn', ValueFromPipelineByPropertyName)] [Alias('DN')] [string] $DistinguishedName,
        [Parameter(Mandatory, ParameterSetName = 'Anchor', ValueFromPipelineByPropertyName)] [string] $Anchor,
        [Parameter(Mandatory, ParameterSetName = 'Object', ValueFromPipeline)] [psobject] $InputObject,
        [string] $RuleName
    )
    process {
        $request = @{ connector = $ConnectorName }
        if ($RuleName) { $request.rule = $RuleName }
        switch ($PSCmdlet.ParameterSetName) {
            'Dn' { $request.dn = $DistinguishedName }
            'Anchor' { $request.anchor = $Anchor }
            'Object' { $request.object = ConvertTo-DirSyncObjectHashtable -InputObject $InputObject }
        }
        Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'filter' -Request $request | Add-DirSyncTypeName -TypeName 'DirSync.FilterResult'
    }
}

function Test-DirSyncPermission {
    <#
    .SYNOPSIS
    Checks the rights of an Active Directory connector's account; nothing is written.
    .DESCRIPTION
    Reports each right (read the partitions, DirSync, create and write objects, reset
    passwords, and with -WritebackOU the writeback container) as present or missing. Only
    connectors of type 'ad' support the check; others return a NotImplemented error.
    .PARAMETER ConnectorName
    The AD connector (pipeline input by property name).
    .PARAMETER WritebackOU
    The container where writeback creates objects.
    .EXAMPLE
    Test-DirSyncPermission -ConnectorName corp.example.com
    .EXAMPLE
    (Test-DirSyncPermission -ConnectorName corp -WritebackOU 'OU=Writeback,DC=corp,DC=example').report.checks | Format-Table
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, ValueFromPipelineByPropertyName)] [Alias('Name', 'Connector')] [string] $ConnectorName,
        [string] $WritebackOU
    )
    process {
        $request = @{ connector = $ConnectorName }
        if ($WritebackOU) { $request.writeback_ou = $WritebackOU }
        Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'test_permission' -Request $request -Long
    }
}

# ---- writeback, passwords, scheduler, threshold ----

function Invoke-DirSyncWriteback {
    <#
    .SYNOPSIS
    Runs the writeback flows (cloud to on-premises Active Directory).
    .DESCRIPTION
    Imports and synchronizes the cloud (Microsoft Graph) connectors, checks the deletion
    threshold and exports to the Active Directory connectors only: group writeback,
    mS-DS-ConsistencyGuid and the other writeback rules. -WhatIf runs it as a dry run (nothing
    is written). Shows progress; Ctrl+C cancels. Needs a cloud and an AD connector.
    .PARAMETER ConfirmDeletes
    Export deletes above the deletion threshold (asks for confirmation).
    .PARAMETER AllowEmptyImport
    Accept a cloud import that returns no objects where the connector space holds some.
    .EXAMPLE
    Invoke-DirSyncWriteback -WhatIf
    .EXAMPLE
    Invoke-DirSyncWriteback | Format-Table ConnectorName, Profile, Result
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType('DirSync.RunRecord')]
    param(
        [switch] $ConfirmDeletes,
        [switch] $AllowEmptyImport
    )
    $dryRun = -not $PSCmdlet.ShouldProcess('Active Directory connectors', 'Write back from the cloud')
    if ($ConfirmDeletes -and -not $dryRun) {
        if (-not $PSCmdlet.ShouldContinue('Deletes above the deletion threshold will be written back.', 'Confirm deletes')) {
            $ConfirmDeletes = $false
        }
    }
    $request = @{ dry_run = $dryRun; confirm_deletes = [bool]$ConfirmDeletes; allow_empty_import = [bool]$AllowEmptyImport }
    $result = Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'writeback' -Request $request -Long
    $result.runs | Add-DirSyncTypeName -TypeName 'DirSync.RunRecord'
}

function Set-DirSyncPassword {
    <#
    .SYNOPSIS
    Sets the Active Directory password of a user.
    .DESCRIPTION
    Finds the AD user behind an identity (user principal name, a DN in any connector space or a
    metaverse id; or an AD connector and DN) and writes unicodePwd over LDAPS or StartTLS.
    The password is taken as a SecureString, decoded only for the native call and never shown
    in errors, verbose output or the run history.
    .PARAMETER Identity
    User principal name, DN or metaverse id (pipeline input by property name: UserPrincipalName).
    .PARAMETER ConnectorName
    An Active Directory connector, with -DistinguishedName.
    .PARAMETER DistinguishedName
    The user's DN in that connector.
    .PARAMETER Password
    The new password.
    .PARAMETER MustChangePassword
    The user must change the password at the next logon (pwdLastSet = 0).
    .EXAMPLE
    Set-DirSyncPassword -Identity alice@corp.example.com -Password (Read-Host -AsSecureString) -MustChangePassword
    .EXAMPLE
    Set-DirSyncPassword -ConnectorName corp -DistinguishedName 'CN=Alice,OU=People,DC=corp,DC=example' -Password $secure
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'High', DefaultParameterSetName = 'Identity')]
    param(
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'Identity', ValueFromPipelineByPropertyName)] [Alias('UserPrincipalName')] [string] $Identity,
        [Parameter(Mandatory, ParameterSetName = 'Dn', ValueFromPipelineByPropertyName)] [Alias('Connector')] [string] $ConnectorName,
        [Parameter(Mandatory, ParameterSetName = 'Dn', ValueFromPipelineByPropertyName)] [Alias('DN')] [string] $DistinguishedName,
        [Parameter(Mandatory)] [System.Security.SecureString] $Password,
        [switch] $MustChangePassword
    )
    process {
        $target = if ($PSCmdlet.ParameterSetName -eq 'Identity') { $Identity } else { "$ConnectorName`: $DistinguishedName" }
        if (-not $PSCmdlet.ShouldProcess($target, 'Set password')) { return }
        $bstr = [System.Runtime.InteropServices.Marshal]::SecureStringToBSTR($Password)
        $request = $null
        try {
            $request = @{ password = [System.Runtime.InteropServices.Marshal]::PtrToStringBSTR($bstr); must_change = [bool]$MustChangePassword }
            if ($PSCmdlet.ParameterSetName -eq 'Identity') { $request.identity = $Identity }
            else { $request.connector = $ConnectorName; $request.dn = $DistinguishedName }
            # Errors name the user, never the request (it holds the password).
            Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'set_password' -Request $request -Target $target | Add-DirSyncTypeName -TypeName 'DirSync.PasswordResult'
        }
        finally {
            [System.Runtime.InteropServices.Marshal]::ZeroFreeBSTR($bstr)
            if ($null -ne $request) { $request.Clear() }
            $request = $null
        }
    }
}

function ConvertTo-DirSyncSchedulerObject {
    param([Parameter(Mandatory)] $Settings)
    # ConvertFrom-Json in PowerShell 7 already turns ISO 8601 text into a DateTime.
    $start = $null
    $when = $Settings.next_cycle_start_utc
    if ($when -is [datetime]) { $start = $when.ToUniversalTime() }
    elseif ($when) { $start = [datetime]::Parse([string]$when, [Globalization.CultureInfo]::InvariantCulture, [Globalization.DateTimeStyles]::AdjustToUniversal) }
    $o = [pscustomobject]@{
        SyncCycleEnabled            = [bool]$Settings.sync_cycle_enabled
        CustomizedSyncCycleInterval = [timespan]::FromSeconds([double]$Settings.interval_seconds)
        NextSyncCyclePolicyType     = [string]$Settings.next_cycle_policy
        NextSyncCycleStartTimeInUTC = $start
        SchedulerSuspended          = [bool]$Settings.suspended
        StagingModeEnabled          = [bool]$Settings.staging_mode
        PurgeRunHistoryInterval     = [timespan]::FromDays([double]$Settings.purge_run_history_days)
        MaintenanceEnabled          = [bool]$Settings.maintenance_enabled
        FullImportIntervalHours     = [long]$Settings.full_import_interval_hours
        ConnectorOverrides          = $Settings.connector_overrides
    }
    $o.PSObject.TypeNames.Insert(0, 'DirSync.SchedulerSettings')
    return $o
}

function Get-DirSyncScheduler {
    <#
    .SYNOPSIS
    Gets the scheduler settings (as Get-ADSyncScheduler).
    .DESCRIPTION
    The configuration's [scheduler] defaults with the changes made by Set-DirSyncScheduler
    (kept next to the state; a running 'dirsync serve' reads them before each cycle).
    .EXAMPLE
    Get-DirSyncScheduler
    .EXAMPLE
    (Get-DirSyncScheduler).CustomizedSyncCycleInterval.TotalMinutes
    #>
    [CmdletBinding()]
    [OutputType('DirSync.SchedulerSettings')]
    param()
    $settings = Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'scheduler_get' -Request @{}
    ConvertTo-DirSyncSchedulerObject -Settings $settings
}

function Set-DirSyncScheduler {
    <#
    .SYNOPSIS
    Changes the scheduler settings (as Set-ADSyncScheduler).
    .DESCRIPTION
    Only the parameters given change. The settings are kept next to the state, so they apply
    to a running 'dirsync serve' before its next cycle.
    .PARAMETER CustomizedSyncCycleInterval
    Time between cycle starts (at least one second).
    .PARAMETER SyncCycleEnabled
    Run cycles at all.
    .PARAMETER NextSyncCyclePolicyType
    Delta or Initial for the next cycle (Initial runs once, then Delta again).
    .PARAMETER NextSyncCycleStartTimeInUTC
    When the next cycle starts (converted to UTC).
    .PARAMETER SchedulerSuspended
    Suspend the scheduler: no new cycle starts.
    .PARAMETER StagingModeEnabled
    Import and synchronize, export nothing.
    .PARAMETER PurgeRunHistoryInterval
    How long run history is kept (whole days, at least one).
    .PARAMETER MaintenanceEnabled
    Purge the run history after cycles.
    .EXAMPLE
    Set-DirSyncScheduler -CustomizedSyncCycleInterval (New-TimeSpan -Minutes 40)
    .EXAMPLE
    Set-DirSyncScheduler -SchedulerSuspended $true
    .EXAMPLE
    Set-DirSyncScheduler -NextSyncCyclePolicyType Initial -StagingModeEnabled $false
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType('DirSync.SchedulerSettings')]
    param(
        [Nullable[timespan]] $CustomizedSyncCycleInterval,
        [Nullable[bool]] $SyncCycleEnabled,
        [ValidateSet('Delta', 'Initial')] [string] $NextSyncCyclePolicyType,
        [Nullable[datetime]] $NextSyncCycleStartTimeInUTC,
        [Nullable[bool]] $SchedulerSuspended,
        [Nullable[bool]] $StagingModeEnabled,
        [Nullable[timespan]] $PurgeRunHistoryInterval,
        [Nullable[bool]] $MaintenanceEnabled
    )
    $request = @{}
    if ($null -ne $CustomizedSyncCycleInterval) { $request.interval_seconds = [long][math]::Floor($CustomizedSyncCycleInterval.TotalSeconds) }
    if ($null -ne $SyncCycleEnabled) { $request.sync_cycle_enabled = [bool]$SyncCycleEnabled }
    # ValidateSet accepts any case; the library takes the exact names.
    if ($NextSyncCyclePolicyType) { $request.next_cycle_policy = $(if ($NextSyncCyclePolicyType -eq 'Initial') { 'Initial' } else { 'Delta' }) }
    if ($null -ne $NextSyncCycleStartTimeInUTC) { $request.next_cycle_start_utc = $NextSyncCycleStartTimeInUTC.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [Globalization.CultureInfo]::InvariantCulture) }
    if ($null -ne $SchedulerSuspended) { $request.suspended = [bool]$SchedulerSuspended }
    if ($null -ne $StagingModeEnabled) { $request.staging_mode = [bool]$StagingModeEnabled }
    if ($null -ne $PurgeRunHistoryInterval) { $request.purge_run_history_days = [long][math]::Floor($PurgeRunHistoryInterval.TotalDays) }
    if ($null -ne $MaintenanceEnabled) { $request.maintenance_enabled = [bool]$MaintenanceEnabled }
    if ($request.Count -eq 0) {
        Write-Warning 'No setting given: nothing changes.'
    }
    if ($PSCmdlet.ShouldProcess('scheduler', 'Set ' + (($request.Keys | Sort-Object) -join ', '))) {
        $settings = Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'scheduler_set' -Request $request
        ConvertTo-DirSyncSchedulerObject -Settings $settings
    }
}

function ConvertTo-DirSyncConnectorOverrideObject {
    param([Parameter(Mandatory)] [string] $ConnectorName, $Override)
    $o = [pscustomobject]@{
        ConnectorName           = $ConnectorName
        FullImportRequired      = ($null -ne $Override -and [bool]$Override.full_import_required)
        FullSyncRequired        = ($null -ne $Override -and [bool]$Override.full_sync_required)
        FullImportIntervalHours = $(if ($null -ne $Override) { $Override.full_import_interval_hours } else { $null })
    }
    $o.PSObject.TypeNames.Insert(0, 'DirSync.SchedulerConnectorOverride')
    return $o
}

function Get-DirSyncSchedulerConnectorOverride {
    <#
    .SYNOPSIS
    Gets the per-connector scheduler overrides (as Get-ADSyncSchedulerConnectorOverride).
    .PARAMETER ConnectorName
    Only this connector (pipeline input by property name); without it every connector with an override.
    .EXAMPLE
    Get-DirSyncSchedulerConnectorOverride -ConnectorName corp.example.com
    .EXAMPLE
    Get-DirSyncConnector | Get-DirSyncSchedulerConnectorOverride
    #>
    [CmdletBinding()]
    [OutputType('DirSync.SchedulerConnectorOverride')]
    param([Parameter(Position = 0, ValueFromPipelineByPropertyName)] [Alias('Name', 'Connector')] [string] $ConnectorName)
    process {
        $settings = Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'scheduler_get' -Request @{}
        $overrides = $settings.connector_overrides
        if ($ConnectorName) {
            $o = $null
            if ($null -ne $overrides -and $overrides.PSObject.Properties[$ConnectorName]) { $o = $overrides.$ConnectorName }
            ConvertTo-DirSyncConnectorOverrideObject -ConnectorName $ConnectorName -Override $o
        }
        elseif ($null -ne $overrides) {
            foreach ($p in $overrides.PSObject.Properties) { ConvertTo-DirSyncConnectorOverrideObject -ConnectorName $p.Name -Override $p.Value }
        }
    }
}

function Set-DirSyncSchedulerConnectorOverride {
    <#
    .SYNOPSIS
    Requires a full import or full sync of a connector on the next cycle (as Set-ADSyncSchedulerConnectorOverride).
    .PARAMETER ConnectorName
    The connector (pipeline input by property name).
    .PARAMETER FullImportRequired
    The next cycle runs a full import on this connector.
    .PARAMETER FullSyncRequired
    The next cycle runs a full sync on this connector.
    .PARAMETER FullImportIntervalHours
    Scheduled full reconciliation of this connector in hours (0: never).
    .EXAMPLE
    Set-DirSyncSchedulerConnectorOverride -ConnectorName corp.example.com -FullSyncRequired $true
    .EXAMPLE
    Get-DirSyncConnector -Name hr | Set-DirSyncSchedulerConnectorOverride -FullImportRequired $true -FullSyncRequired $true
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType('DirSync.SchedulerConnectorOverride')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)] [Alias('Name', 'Connector')] [string] $ConnectorName,
        [Nullable[bool]] $FullImportRequired,
        [Nullable[bool]] $FullSyncRequired,
        [Nullable[long]] $FullImportIntervalHours
    )
    process {
        $o = @{}
        if ($null -ne $FullImportRequired) { $o.full_import_required = [bool]$FullImportRequired }
        if ($null -ne $FullSyncRequired) { $o.full_sync_required = [bool]$FullSyncRequired }
        if ($null -ne $FullImportIntervalHours) { $o.full_import_interval_hours = $FullImportIntervalHours }
        if (-not $PSCmdlet.ShouldProcess($ConnectorName, 'Set scheduler override ' + (($o.Keys | Sort-Object) -join ', '))) { return }
        $settings = Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'scheduler_set' -Request @{ connector_overrides = @{ $ConnectorName = $o } }
        $override = $null
        if ($null -ne $settings.connector_overrides -and $settings.connector_overrides.PSObject.Properties[$ConnectorName]) { $override = $settings.connector_overrides.$ConnectorName }
        ConvertTo-DirSyncConnectorOverrideObject -ConnectorName $ConnectorName -Override $override
    }
}

function Get-DirSyncDeletionThreshold {
    <#
    .SYNOPSIS
    Gets the deletion threshold in force for this session.
    .EXAMPLE
    Get-DirSyncDeletionThreshold
    #>
    [CmdletBinding()]
    param()
    Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'deletion_threshold_get' -Request @{} | Add-DirSyncTypeName -TypeName 'DirSync.DeletionThreshold'
}

function Set-DirSyncDeletionThreshold {
    <#
    .SYNOPSIS
    Changes the deletion threshold for this session (the configuration file is not rewritten).
    .PARAMETER DeletionThreshold
    Most deletes one export may carry (0 = no count limit).
    .PARAMETER Percentage
    Most deletes as a percentage of the connector's objects (0 = no percentage limit).
    .EXAMPLE
    Set-DirSyncDeletionThreshold -DeletionThreshold 1000
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'High')]
    param(
        [Alias('Count')] [Nullable[long]] $DeletionThreshold,
        [ValidateRange(0, 100)] [Nullable[double]] $Percentage
    )
    $request = @{}
    if ($null -ne $DeletionThreshold) { $request.count = $DeletionThreshold }
    if ($null -ne $Percentage) { $request.percent = $Percentage }
    if ($PSCmdlet.ShouldProcess('deletion threshold', 'Set')) {
        Invoke-DirSyncNative -Cmdlet $PSCmdlet -Operation 'deletion_threshold_set' -Request $request | Add-DirSyncTypeName -TypeName 'DirSync.DeletionThreshold'
    }
}

# ---- conversions ----

function ConvertTo-DirSyncImmutableId {
    <#
    .SYNOPSIS
    Converts an objectGUID to the Entra ID immutableId (base64 of the little-endian GUID bytes).
    .EXAMPLE
    ConvertTo-DirSyncImmutableId -Guid 88666888-0101-1111-bbbb-1234567890ab
    .EXAMPLE
    Get-ADUser alice | ConvertTo-DirSyncImmutableId
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param([Parameter(Mandatory, Position = 0, ValueFromPipeline, ValueFromPipelineByPropertyName)] [Alias('ObjectGuid')] [string] $Guid)
    process { Invoke-DirSyncStage -Cmdlet $PSCmdlet -Operation 'immutable_id_from_guid' -Text $Guid }
}

function ConvertFrom-DirSyncImmutableId {
    <#
    .SYNOPSIS
    Converts an Entra ID immutableId back to the objectGUID.
    .EXAMPLE
    ConvertFrom-DirSyncImmutableId -ImmutableId 'iGhmiAEBERG7uxI0VniQqw=='
    #>
    [CmdletBinding()]
    [OutputType([guid])]
    param([Parameter(Mandatory, Position = 0, ValueFromPipeline, ValueFromPipelineByPropertyName)] [string] $ImmutableId)
    process { [guid](Invoke-DirSyncStage -Cmdlet $PSCmdlet -Operation 'guid_from_immutable_id' -Text $ImmutableId) }
}

# ---- stage cmdlets: Import | Select | Convert | Export, without the persistent engine ----

function ConvertTo-DirSyncObjectHashtable {
    param([Parameter(Mandatory)] [psobject] $InputObject)
    $attributes = @{}
    if ($InputObject.PSObject.Properties['attributes'] -and $null -ne $InputObject.attributes) {
        foreach ($p in $InputObject.attributes.PSObject.Properties) { $attributes[$p.Name] = @($p.Value) }
    }
    $o = @{ dn = [string]$InputObject.dn; object_type = [string]$InputObject.object_type; attributes = $attributes }
    if ($InputObject.PSObject.Properties['anchor'] -and $InputObject.anchor) { $o.anchor = [string]$InputObject.anchor }
    return $o
}

function Import-DirSyncObject {
    <#
    .SYNOPSIS
    Reads every object from a connector given inline (stage call, no state).
    .PARAMETER Connector
    The connector as in the configuration: @{ name = 'src'; type = 'ldif'; settings = @{ path = 'src.ldif' } }.
    .EXAMPLE
    Import-DirSyncObject -Connector @{ name = 'hr'; type = 'csv'; settings = @{ path = 'hr.csv'; anchor_column = 'id' } }
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)] [hashtable] $Connector, [string] $BaseDirectory = (Get-Location).ProviderPath)
    $text = Invoke-DirSyncStage -Cmdlet $PSCmdlet -Operation 'stage_import' -Text (ConvertTo-Json -InputObject @{ connector = $Connector; base_dir = $BaseDirectory } -Depth 32 -Compress)
    (ConvertFrom-Json -InputObject $text).objects | Add-DirSyncTypeName -TypeName 'DirSync.Object'
}

function Select-DirSyncObject {
    <#
    .SYNOPSIS
    Keeps the objects that pass a scoping filter (stage call).
    .PARAMETER Scope
    Scoping groups: @(@{ clauses = @(@{ attribute = 'department'; operator = 'EQUAL'; value = 'Sales' }) }).
    .EXAMPLE
    Import-DirSyncObject -Connector $src | Select-DirSyncObject -Scope $scope -ObjectType user
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, ValueFromPipeline)] [psobject] $InputObject,
        [hashtable[]] $Scope = @(),
        [string] $ObjectType
    )
    begin { $objects = New-Object System.Collections.ArrayList }
    process { $null = $objects.Add((ConvertTo-DirSyncObjectHashtable -InputObject $InputObject)) }
    end {
        $request = @{ objects = $objects.ToArray(); scope = $Scope }
        if ($ObjectType) { $request.object_type = $ObjectType }
        $text = Invoke-DirSyncStage -Cmdlet $PSCmdlet -Operation 'stage_filter' -Text (ConvertTo-Json -InputObject $request -Depth 32 -Compress)
        $result = ConvertFrom-Json -InputObject $text
        foreach ($d in $result.decisions) { Write-Verbose ('{0}: {1} ({2})' -f $d.dn, $d.in_scope, $d.reason) }
        $result.in | Add-DirSyncTypeName -TypeName 'DirSync.Object'
    }
}

function Convert-DirSyncObject {
    <#
    .SYNOPSIS
    Applies one sync rule (scope and attribute flows) to objects (stage call).
    .PARAMETER Rule
    The rule as in the configuration, with expressions in flows.
    .EXAMPLE
    $objects | Convert-DirSyncObject -Rule @{ name = 'out'; direction = 'outbound'; connector = 'tgt'; source_type = 'user'; target_type = 'user'; precedence = 1; flows = @(@{ target = 'mail'; expression = 'LCase([mail])' }) }
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, ValueFromPipeline)] [psobject] $InputObject,
        [Parameter(Mandatory)] [hashtable] $Rule,
        [hashtable] $Parameters = @{}
    )
    begin { $objects = New-Object System.Collections.ArrayList }
    process { $null = $objects.Add((ConvertTo-DirSyncObjectHashtable -InputObject $InputObject)) }
    end {
        $request = @{ rule = $Rule; objects = $objects.ToArray(); parameters = $Parameters }
        $text = Invoke-DirSyncStage -Cmdlet $PSCmdlet -Operation 'stage_transform' -Text (ConvertTo-Json -InputObject $request -Depth 32 -Compress)
        $result = ConvertFrom-Json -InputObject $text
        foreach ($s in $result.skipped) { Write-Verbose ('skipped {0}: {1}' -f $s.dn, $s.reason) }
        $result.objects | Add-DirSyncTypeName -TypeName 'DirSync.Object'
    }
}

function Export-DirSyncObject {
    <#
    .SYNOPSIS
    Writes objects to a target connector: plans against what the target holds, then exports.
    .DESCRIPTION
    Imports the target, computes adds, updates and (with -DeleteMissing) deletes, and writes
    them. Supports -WhatIf; deletes ask for confirmation (ConfirmImpact High).
    .EXAMPLE
    Import-DirSyncObject -Connector $src | Convert-DirSyncObject -Rule $rule | Export-DirSyncObject -Connector $tgt -WhatIf
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'High')]
    param(
        [Parameter(Mandatory, ValueFromPipeline)] [psobject] $InputObject,
        [Parameter(Mandatory)] [hashtable] $Connector,
        [switch] $DeleteMissing,
        [string] $BaseDirectory = (Get-Location).ProviderPath
    )
    begin { $objects = New-Object System.Collections.ArrayList }
    process { $null = $objects.Add((ConvertTo-DirSyncObjectHashtable -InputObject $InputObject)) }
    end {
        $importText = Invoke-DirSyncStage -Cmdlet $PSCmdlet -Operation 'stage_import' -Text (ConvertTo-Json -InputObject @{ connector = $Connector; base_dir = $BaseDirectory } -Depth 32 -Compress)
        $current = @((ConvertFrom-Json -InputObject $importText).objects | Where-Object { $null -ne $_ } | ForEach-Object { ConvertTo-DirSyncObjectHashtable -InputObject $_ })
        $planText = Invoke-DirSyncStage -Cmdlet $PSCmdlet -Operation 'stage_plan' -Text (ConvertTo-Json -InputObject @{ desired = $objects.ToArray(); current = $current; delete_missing = [bool]$DeleteMissing } -Depth 32 -Compress)
        $approved = New-Object System.Collections.ArrayList
        foreach ($change in (ConvertFrom-Json -InputObject $planText).changes) {
            if ($null -eq $change) { continue }
            if ($PSCmdlet.ShouldProcess($change.dn, $change.operation)) { $null = $approved.Add($change) }
        }
        if ($approved.Count -eq 0) { return }
        $exportRequest = '{"connector":' + (ConvertTo-Json -InputObject $Connector -Depth 32 -Compress) + ',"base_dir":' + (ConvertTo-Json -InputObject $BaseDirectory -Compress) + ',"changes":' + (ConvertTo-Json -InputObject $approved.ToArray() -Depth 32 -Compress) + '}'
        $text = Invoke-DirSyncStage -Cmdlet $PSCmdlet -Operation 'stage_export' -Text $exportRequest
        (ConvertFrom-Json -InputObject $text).results | Add-DirSyncTypeName -TypeName 'DirSync.ExportResult'
    }
}

Export-ModuleMember -Function @(
    'Connect-DirSync', 'Disconnect-DirSync', 'Start-DirSyncCycle', 'Invoke-DirSyncRunProfile',
    'Get-DirSyncPendingExport', 'Get-DirSyncRunHistory', 'Get-DirSyncConnector', 'Get-DirSyncRule',
    'Get-DirSyncCSObject', 'Get-DirSyncMVObject', 'Sync-DirSyncObject', 'Test-DirSyncFilter',
    'Invoke-DirSyncWriteback', 'Set-DirSyncPassword', 'Get-DirSyncScheduler', 'Set-DirSyncScheduler',
    'Get-DirSyncSchedulerConnectorOverride', 'Set-DirSyncSchedulerConnectorOverride',
    'Get-DirSyncDeletionThreshold', 'Set-DirSyncDeletionThreshold', 'ConvertTo-DirSyncImmutableId',
    'ConvertFrom-DirSyncImmutableId', 'Test-DirSyncPermission', 'Import-DirSyncObject',
    'Select-DirSyncObject', 'Convert-DirSyncObject', 'Export-DirSyncObject'
)
