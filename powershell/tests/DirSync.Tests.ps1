# Pester 5 tests of the DirSync module. Run on a machine with pwsh and the built library copied
# next to the module (tests/ffi_module.rs does this when pwsh is installed):
#   pwsh -NoProfile -Command "Invoke-Pester -Path powershell/tests -Output Detailed"
# The fixture (config.json, src.ldif) is taken from $env:DIRSYNC_TEST_FIXTURE.

BeforeAll {
    $modulePath = Join-Path (Split-Path $PSScriptRoot -Parent) 'DirSync.psd1'
    Import-Module $modulePath -Force
    $script:fixture = $env:DIRSYNC_TEST_FIXTURE
    Push-Location $script:fixture
}

AfterAll {
    Disconnect-DirSync
    Pop-Location
}

Describe 'DirSync module' {
    It 'exports every cmdlet of the manifest' {
        $manifest = Import-PowerShellDataFile (Join-Path (Split-Path $PSScriptRoot -Parent) 'DirSync.psd1')
        foreach ($name in $manifest.FunctionsToExport) {
            Get-Command -Module DirSync -Name $name | Should -Not -BeNullOrEmpty
        }
    }

    It 'has help with examples on every cmdlet' {
        foreach ($c in Get-Command -Module DirSync) {
            (Get-Help $c.Name).examples | Should -Not -BeNullOrEmpty
        }
    }

    It 'converts immutableIds both ways' {
        ConvertTo-DirSyncImmutableId -Guid '88666888-0101-1111-bbbb-1234567890ab' | Should -Be 'iGhmiAEBERG7uxI0VniQqw=='
        ConvertFrom-DirSyncImmutableId -ImmutableId 'iGhmiAEBERG7uxI0VniQqw==' | Should -Be ([guid]'88666888-0101-1111-bbbb-1234567890ab')
    }

    It 'fails with a category when not connected' {
        { Get-DirSyncRunHistory } | Should -Throw -ErrorId 'DirSyncNotConnected*'
    }

    It 'connects and runs a cycle with typed output' {
        Connect-DirSync -ConfigJson (Get-Content (Join-Path $script:fixture 'config.json') -Raw)
        $runs = Start-DirSyncCycle -PolicyType Initial -Confirm:$false
        $runs | Should -Not -BeNullOrEmpty
        $runs[0].PSObject.TypeNames[0] | Should -Be 'DirSync.RunRecord'
    }

    It 'runs a dry-run cycle under -WhatIf' {
        $runs = Start-DirSyncCycle -PolicyType Delta -WhatIf
        $runs | Should -Not -BeNullOrEmpty
    }

    It 'queries connectors, rules, objects and history' {
        (Get-DirSyncConnector).name | Should -Contain 'tgt'
        (Get-DirSyncRule -Name 'user*').Count | Should -Be 2
        $cs = Get-DirSyncCSObject -ConnectorName tgt -DistinguishedName 'uid=alice,dc=t'
        $cs.PSObject.TypeNames[0] | Should -Be 'DirSync.CSObject'
        Get-DirSyncMVObject | Should -Not -BeNullOrEmpty
        Get-DirSyncRunHistory -NumberRequested 3 | Should -HaveCount 3
        Get-DirSyncConnector -Name src | Invoke-DirSyncRunProfile -RunProfile DeltaSync -Confirm:$false | Should -Not -BeNullOrEmpty
    }

    It 'explains scoping' {
        $r = Test-DirSyncFilter -ConnectorName src -DistinguishedName 'uid=carol,ou=gone,dc=corp'
        $r.in_scope | Should -BeFalse
        $r.rules[0].reason | Should -Match 'not satisfied'
    }

    It 'sets the deletion threshold for the session' {
        (Set-DirSyncDeletionThreshold -DeletionThreshold 12 -Confirm:$false).count | Should -Be 12
        (Get-DirSyncDeletionThreshold).count | Should -Be 12
    }

    It 'previews the sync of one object and commits it only with -Commit' {
        $r = Sync-DirSyncObject -ConnectorName src -DistinguishedName 'uid=alice,ou=People,dc=corp'
        $r.PSObject.TypeNames[0] | Should -Be 'DirSync.ObjectSyncResult'
        $r.Action | Should -Be 'stay'
        $r.committed | Should -BeFalse
        $r.inbound_rules[0].rule | Should -Be 'user in'
        $r.inbound_rules[0].PSObject.TypeNames[0] | Should -Be 'DirSync.RuleEvaluation'
        (Sync-DirSyncObject -ConnectorName src -DistinguishedName 'uid=bob,ou=People,dc=corp' -Commit -WhatIf).committed | Should -BeFalse
        (Sync-DirSyncObject -ConnectorName src -Anchor '00000000-0000-4000-8000-00000000000b' -Commit -Confirm:$false).committed | Should -BeTrue
        $out = Sync-DirSyncObject -ConnectorName src -DistinguishedName 'uid=carol,ou=gone,dc=corp'
        $out.inbound_rules[0].in_scope | Should -BeFalse
        $out.Action | Should -Be 'none'
        { Sync-DirSyncObject -ConnectorName src -DistinguishedName 'uid=nobody,dc=corp' } | Should -Throw -ErrorId 'DIRSYNC_E_NOT_FOUND*'
    }

    It 'gets and sets the scheduler like Get-/Set-ADSyncScheduler' {
        $s = Get-DirSyncScheduler
        $s.PSObject.TypeNames[0] | Should -Be 'DirSync.SchedulerSettings'
        $s.CustomizedSyncCycleInterval.TotalMinutes | Should -Be 30
        $s = Set-DirSyncScheduler -CustomizedSyncCycleInterval (New-TimeSpan -Minutes 40) -SchedulerSuspended $true -NextSyncCyclePolicyType Initial -Confirm:$false
        $s.CustomizedSyncCycleInterval.TotalMinutes | Should -Be 40
        (Get-DirSyncScheduler).SchedulerSuspended | Should -BeTrue
        (Get-DirSyncScheduler).NextSyncCyclePolicyType | Should -BeExactly 'Initial'
        (Set-DirSyncScheduler -NextSyncCyclePolicyType initial -Confirm:$false).NextSyncCyclePolicyType | Should -BeExactly 'Initial'
        Set-DirSyncScheduler -SchedulerSuspended $false -WhatIf
        (Get-DirSyncScheduler).SchedulerSuspended | Should -BeTrue
        { Set-DirSyncScheduler -CustomizedSyncCycleInterval ([timespan]::Zero) -Confirm:$false } | Should -Throw -ErrorId 'DIRSYNC_E_INVALID_ARGUMENT*'
        (Set-DirSyncScheduler -SchedulerSuspended $false -NextSyncCyclePolicyType Delta -Confirm:$false).SchedulerSuspended | Should -BeFalse
        $when = [datetime]::new(2030, 1, 2, 3, 4, 5, [DateTimeKind]::Utc)
        (Set-DirSyncScheduler -NextSyncCycleStartTimeInUTC $when -Confirm:$false).NextSyncCycleStartTimeInUTC | Should -Be $when
        (Set-DirSyncScheduler -PurgeRunHistoryInterval (New-TimeSpan -Days 3) -Confirm:$false).PurgeRunHistoryInterval.TotalDays | Should -Be 3
    }

    It 'sets connector overrides' {
        $o = Set-DirSyncSchedulerConnectorOverride -ConnectorName tgt -FullSyncRequired $true -Confirm:$false
        $o.FullSyncRequired | Should -BeTrue
        $o.FullImportRequired | Should -BeFalse
        (Get-DirSyncSchedulerConnectorOverride -ConnectorName tgt).FullSyncRequired | Should -BeTrue
        { Set-DirSyncSchedulerConnectorOverride -ConnectorName nope -FullImportRequired $true -Confirm:$false } | Should -Throw -ErrorId 'DIRSYNC_E_INVALID_ARGUMENT*'
    }

    It 'reports writeback without a cloud connector as a configuration error' {
        { Invoke-DirSyncWriteback -Confirm:$false } | Should -Throw -ErrorId 'DIRSYNC_E_CONFIG*'
        { Invoke-DirSyncWriteback -WhatIf } | Should -Throw -ErrorId 'DIRSYNC_E_CONFIG*'
    }

    It 'sets passwords only through AD and never shows the password' {
        $pw = ConvertTo-SecureString 'S3cr3t-P@ss' -AsPlainText -Force
        { Set-DirSyncPassword -ConnectorName src -DistinguishedName 'uid=alice' -Password $pw -Confirm:$false } | Should -Throw -ErrorId 'DIRSYNC_E_NOT_SUPPORTED*'
        $err = $null
        try { Set-DirSyncPassword -Identity 'nobody@corp.example.com' -Password $pw -MustChangePassword -Confirm:$false } catch { $err = $_ }
        $err | Should -Not -BeNullOrEmpty
        $err.FullyQualifiedErrorId | Should -Match 'DIRSYNC_E_NOT_FOUND'
        $err.TargetObject | Should -Be 'nobody@corp.example.com'
        (($err | Out-String) + $err.ErrorDetails.RecommendedAction + ($err.TargetObject | Out-String)) | Should -Not -Match 'S3cr3t'
    }

    It 'chains stage cmdlets through the pipeline' {
        $src = @{ name = 'src'; type = 'ldif'; settings = @{ path = 'src.ldif' } }
        $scope = @(@{ clauses = @(@{ attribute = 'dn'; operator = 'NOTCONTAINS'; value = 'ou=gone' }) })
        $rule = @{ name = 'r'; direction = 'outbound'; connector = 'out'; source_type = 'user'; target_type = 'user'; precedence = 1
            flows = @(@{ target = 'dn'; expression = '"uid=" & [uid] & ",dc=out"' }, @{ target = 'objectClass'; constant = 'inetOrgPerson' }, @{ target = 'uid'; source = 'uid' }) }
        $out = @{ name = 'out'; type = 'ldif'; settings = @{ path = 'pester-out.ldif' } }
        Import-DirSyncObject -Connector $src | Select-DirSyncObject -Scope $scope | Convert-DirSyncObject -Rule $rule | Export-DirSyncObject -Connector $out -Confirm:$false | Should -HaveCount 2
        Get-Content (Join-Path $script:fixture 'pester-out.ldif') -Raw | Should -Match 'uid=alice,dc=out'
    }
}
